# wardcast in a container: the `wardcast` command as entry point, a simulated
# week of the reference hospital as the default command, any role by argument:
#
#   docker build -t wardcast .
#   docker run --rm wardcast                                  # a simulated week
#   docker run --rm wardcast publish --keys /keys --endpoint tcp://0.0.0.0:5555
#   docker run --rm wardcast subscribe --role caregiver --patient 1 ...
#   docker run --rm wardcast sweep scenarios/curve.toml
#
# Two stages: the first builds a virtual environment from the project's own
# metadata (pyproject.toml), pinned by docker/constraints.txt; the second holds
# that environment and nothing used to build it (no pip, no setuptools, no
# sources, no caches), and runs as an unprivileged user.
#
# The base is pinned by digest (python 3.11.10, Debian bookworm, slim), so a
# rebuild starts from the same bytes. Where no registry can be reached, build
# from a locally made image with the same Python instead:
#   docker build --build-arg PYTHON_IMAGE=local/debian-python:3.11-bookworm .
# (see the README's "Deployment in containers").
ARG PYTHON_IMAGE=python:3.11.10-slim-bookworm@sha256:5148c0e4bbb64271bca1d3322360ebf4bfb7564507ae32dd639322e4952a6b16

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python3 -m venv /opt/wardcast
COPY pyproject.toml README.md ./
COPY docker/constraints.txt ./docker/
COPY sim ./sim
COPY reports ./reports
# A regular (not editable) install, so the environment needs no sources; then
# the installers themselves go, as the final image never installs anything.
RUN /opt/wardcast/bin/pip install --constraint docker/constraints.txt . \
    && /opt/wardcast/bin/pip uninstall --yes pip setuptools \
    && find /opt/wardcast -name '__pycache__' -prune -exec rm -rf {} +

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="wardcast" \
      org.opencontainers.image.description="Simulation and load-testing harness for a brokerless ZeroMQ hospital publish/subscribe system"
# A fixed uid, so files written to a mounted volume have a known owner.
# Its keys/ and results/ folders exist in the image so that named volumes
# mounted there start owned by that user.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/wardcast wardcast \
    && install -d -o 10001 -g 10001 /home/wardcast/keys /home/wardcast/results
COPY --from=build /opt/wardcast /opt/wardcast
COPY bench/scenarios /home/wardcast/scenarios
ENV PATH=/opt/wardcast/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
WORKDIR /home/wardcast
# The publisher's port in the reference deployment.
EXPOSE 5555
ENTRYPOINT ["wardcast"]
CMD ["run"]
