"""`cachepoint serve` (a gateway) and `cachepoint node` (an engine replica): load settings → build → run the
ASGI server; `cachepoint doctor` and `cachepoint report` read invocation logs."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import uvicorn

from cachepoint.api.app import create_app
from cachepoint.api.server import raise_open_file_limit, uvicorn_config
from cachepoint.bootstrap import build_node, build_services
from cachepoint.cluster.node import create_node_app
from cachepoint.cluster.wire import check_secret
from cachepoint.doctor.analysis import analyse
from cachepoint.doctor.costs import cost_report
from cachepoint.doctor.reader import DEFAULT_LIMITS, Limits, LoadResult, load_records, mebibytes
from cachepoint.doctor.records import iso_time
from cachepoint.doctor.html import render_html
from cachepoint.doctor.whatif import longer_ttl
from cachepoint.doctor.report import as_json, cost_table, diagnosis, nothing_read, skipped_json, skipped_text
from cachepoint.models.catalog import Catalog
from cachepoint.settings import DEFAULT_PORT, NODE_PORT, load_settings

BANNER = """cachepoint listening on {url}  (Region {region})
  boto3:   boto3.client("bedrock-runtime", endpoint_url="{url}", region_name="{region}")
  AWS CLI: aws bedrock-runtime converse --endpoint-url {url} --region {region} \\
             --model-id us.anthropic.claude-sonnet-4-6 \\
             --messages '[{{"role":"user","content":[{{"text":"Hello"}}]}}]'
  env:     AWS_ENDPOINT_URL_BEDROCK_RUNTIME={url}
{notes}
  stats:   {url}/cachepoint/cache
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cachepoint")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help=f"port (default {DEFAULT_PORT})")
    serve.add_argument("--config", type=Path, default=None, help="TOML config file (default $CACHEPOINT_CONFIG)")
    serve.add_argument("--engine", choices=["vllm"], default=None,
                       help="serve the embedded model on a managed vLLM (scripts/setup-vllm.sh makes it)")  # fmt: skip
    node = commands.add_parser("node", help="run an engine replica for gateways (needs [cluster] secret)")
    node.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    node.add_argument("--port", type=int, default=None, help="port (default 8790)")
    node.add_argument("--config", type=Path, default=None, help="TOML config file (default $CACHEPOINT_CONFIG)")
    doctor = commands.add_parser("doctor", help="explain every cache miss in invocation logs (ours or Bedrock's)")
    doctor.add_argument("source", help="a log file, a folder (S3 layout or not), or s3://bucket/prefix")
    doctor.add_argument("--json", action="store_true", help='{"findings": [...], "skipped": [...]} as JSON')
    doctor.add_argument("--html", type=Path, metavar="OUT.html",
                        help="also write the report as one self-contained page")  # fmt: skip
    doctor.add_argument("--max-file-mib", type=mebibytes, default=DEFAULT_LIMITS.max_file_bytes, dest="max_file_bytes",
                        help="stop reading a log file past this many MiB, read or inflated (default 256)")  # fmt: skip
    report = commands.add_parser("report", help="cost and savings from invocation logs")
    report.add_argument("source", help="a log file, a folder, or s3://bucket/prefix")
    report.add_argument("--since", type=iso_time, help="ISO time, inclusive (e.g. 2026-11-01T00:00:00Z)")
    report.add_argument("--until", type=iso_time, help="ISO time, exclusive")
    report.add_argument("--max-file-mib", type=mebibytes, default=DEFAULT_LIMITS.max_file_bytes, dest="max_file_bytes",
                        help="stop reading a log file past this many MiB, read or inflated (default 256)")  # fmt: skip
    args = parser.parse_args(argv)
    return {"serve": _serve, "node": _node, "doctor": _doctor, "report": _report}[args.command](args)


def _load(args: argparse.Namespace) -> LoadResult | None:
    """The logs at `args.source`, or None after one line on stderr when there is nothing to read."""
    try:
        loaded = load_records(args.source, Limits(max_file_bytes=args.max_file_bytes))
    except OSError as error:
        print(f"cachepoint: {error}", file=sys.stderr)
        return None
    if not loaded.records:
        print(f"cachepoint: {nothing_read(args.source, loaded.skipped)}", file=sys.stderr)
        return None
    return loaded


def _doctor(args: argparse.Namespace) -> int:
    """Exit 2 with one line when there is nothing to read; otherwise 0, with what was skipped on stderr."""
    catalog = Catalog.packaged()
    loaded = _load(args)
    if loaded is None:
        return 2
    findings = analyse(loaded, catalog)
    if args.html is not None:
        page = render_html(findings, cost_report(loaded, catalog), longer_ttl(findings, catalog), loaded.skipped)
        args.html.write_text(page, encoding="utf-8")
    if args.json:
        print(json.dumps({"findings": as_json(findings), "skipped": skipped_json(loaded.skipped)}, indent=2))
    else:
        print(diagnosis(findings, cost_report(loaded, catalog), longer_ttl(findings, catalog)), end="", flush=True)
    print(skipped_text(loaded.skipped), end="", file=sys.stderr)
    return 0


def _report(args: argparse.Namespace) -> int:
    loaded = _load(args)
    if loaded is None:
        return 2
    records = [r for r in loaded if _in_range(r.time_s, args.since, args.until)]
    print(cost_table(cost_report(records, Catalog.packaged())), end="", flush=True)
    print(skipped_text(loaded.skipped), end="", file=sys.stderr)
    return 0


def _in_range(time_s: float, since_s: float | None, until_s: float | None) -> bool:
    return (since_s is None or time_s >= since_s) and (until_s is None or time_s < until_s)


def _serve(args: argparse.Namespace) -> int:
    _log_setup()
    try:
        settings = load_settings(args.config, host=args.host, port=args.port, engine=args.engine)
        services = build_services(settings)
    except (ValueError, TypeError, OSError) as error:  # a configuration mistake, said plainly
        print(f"cachepoint: {error}", file=sys.stderr)
        return 2
    raise_open_file_limit()
    url = f"http://{settings.host}:{settings.port}"
    for note in services.notes:  # in the log too: the banner goes to standard output
        logging.getLogger("cachepoint").info("%s", note.strip())
    notes = "\n".join("  " + note for note in services.notes)
    print(BANNER.format(url=url, region=settings.region, notes=notes), flush=True)
    config = uvicorn_config(create_app(services), settings.host, settings.port, settings.limits)
    uvicorn.Server(config).run()
    return 0


def _log_setup() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per node health check otherwise


def _node(args: argparse.Namespace) -> int:
    _log_setup()
    try:
        # the client API's auth settings do not apply: a node answers only callers with the cluster secret
        settings = load_settings(args.config, port=args.port or NODE_PORT)
        secret = check_secret(settings.cluster.secret)
        engines = build_node(settings)
    except (ValueError, TypeError, OSError) as error:
        print(f"cachepoint: {error}", file=sys.stderr)
        return 2
    raise_open_file_limit()
    names, budget_mib = ", ".join(sorted(engines.runners)), settings.cache_max_bytes // 2**20
    host = args.host or settings.host
    url = f"http://{host}:{settings.port}"
    print(f"cachepoint node {engines.name} on {url}: engines {names}; snapshots up to {budget_mib:,} MiB", flush=True)
    config = uvicorn_config(create_node_app(engines, secret), host, settings.port, settings.limits)
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
