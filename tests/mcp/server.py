"""A FastMCP server (PyPI `fastmcp`), for the tests of agents that use MCP
servers' tools: `server.py stdio`, or `server.py http PORT` (Streamable HTTP
at /mcp). `temperature` answers, `refuse` fails, `slow` takes a minute, `die` ends the process,
`trace_context` says what trace context the call's `_meta` carried, and
`environment` lists the variables the server was started with. With PID_FILE
set, it writes its process id there, so a test can see it has gone. With
OTEL_EXPORTER_OTLP_ENDPOINT set, FastMCP's own spans go there over OTLP/gRPC,
in the trace each call's `_meta` carries."""

import os
import sys
import time

from fastmcp import Context, FastMCP
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

if "OTEL_EXPORTER_OTLP_ENDPOINT" in os.environ:
    # Each span is sent as it ends: a stdio server may be stopped at any time.
    provider = TracerProvider(resource=Resource.create({"service.name": "weather-facts"}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"], insecure=True))
    )
    trace.set_tracer_provider(provider)

server = FastMCP("weather-facts")


@server.tool
def temperature(city: str) -> str:
    """The temperature in a city, in degrees Celsius."""
    return {"Paris": "14", "Lisbon": "19"}.get(city, "unknown")


@server.tool
def refuse() -> str:
    """Always fails."""
    raise ValueError("refused, as asked")


@server.tool
def slow() -> str:
    """Answers after a minute."""
    time.sleep(60)
    return "late"


@server.tool
def die() -> str:
    """Ends the server's process in the middle of the call."""
    os._exit(3)


@server.tool
def trace_context(ctx: Context) -> str:
    """The W3C trace context the call carried in `_meta`."""
    meta = (ctx.request_context.meta if ctx.request_context else None) or {}
    return meta.get("traceparent", "none")


@server.tool
def environment() -> str:
    """The names of the variables this process was started with."""
    return ",".join(sorted(os.environ))


if "PID_FILE" in os.environ:
    with open(os.environ["PID_FILE"], "w") as pid_file:
        pid_file.write(str(os.getpid()))

if sys.argv[1] == "stdio":
    server.run(show_banner=False)
else:
    server.run(transport="http", host="127.0.0.1", port=int(sys.argv[2]), show_banner=False)
