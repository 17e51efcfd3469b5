"""Hospital subscribers as Locust users: see README, "Load from Locust".

    locust -f bench/locustfile.py --headless -u 12 -r 6 -t 20s \
        --hospital-endpoint tcp://127.0.0.1:5555 --hospital-status tcp://127.0.0.1:5556

The users, the end-of-test accounting and the stepped shape live in
`sim.locust_users` and `sim.locust_run`; this file only shows them to Locust.
"""

from locust import events

from sim.locust_run import SubscriberSteps, install
from sim.locust_users import AdministrationUser, CaregiverUser, PsychiatristUser

__all__ = ["AdministrationUser", "CaregiverUser", "PsychiatristUser", "SubscriberSteps"]

install(events)
