# A first working image: the wardcast command with a simulated week as its
# default. See the README's deployment section.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY sim ./sim
COPY reports ./reports
RUN pip install --no-cache-dir .
ENTRYPOINT ["wardcast"]
CMD ["run"]
