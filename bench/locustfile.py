"""Hospital subscribers as Locust users: see README, "Load from Locust".

    wardcast publish --rate 200 --status tcp://127.0.0.1:5556 --quiet   # terminal 1
    locust -f bench/locustfile.py --headless -u 12 -r 6 -t 20s          # terminal 2

The users, the end-of-test accounting and the stepped shape live in
`sim.locust_users` and `sim.locust_run`; this file shows them to Locust and
is where a bad option becomes one line on standard error and exit status 2.
"""

import sys

from locust import events

from sim import locust_run
from sim.errors import RunError, UserError
from sim.locust_run import SubscriberSteps
from sim.locust_users import AdministrationUser, CaregiverUser, PsychiatristUser

__all__ = ["AdministrationUser", "CaregiverUser", "PsychiatristUser", "SubscriberSteps"]

EXIT_FAILED, EXIT_USAGE = 1, 2

locust_run.install(events)


@events.init.add_listener
def check_options(environment, **kwargs):
    try:
        locust_run.on_init(environment, **kwargs)
    except UserError as error:
        print(f"locust: {error}", file=sys.stderr, flush=True)
        sys.exit(EXIT_USAGE)
    except RunError as error:
        print(f"locust: {error}", file=sys.stderr, flush=True)
        sys.exit(EXIT_FAILED)
