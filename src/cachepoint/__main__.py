"""`cachepoint serve`: load settings → build services → run the ASGI server."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import uvicorn

from cachepoint.api.app import create_app
from cachepoint.bootstrap import build_services
from cachepoint.doctor.analysis import analyse
from cachepoint.doctor.costs import cost_report
from cachepoint.doctor.reader import load_records
from cachepoint.doctor.report import as_json, cost_table, diagnosis
from cachepoint.models.catalog import Catalog
from cachepoint.settings import DEFAULT_PORT, load_settings

BANNER = """cachepoint listening on {url}  (Region {region})
  boto3:   boto3.client("bedrock-runtime", endpoint_url="{url}", region_name="{region}")
  AWS CLI: aws bedrock-runtime converse --endpoint-url {url} --region {region} \\
             --model-id us.anthropic.claude-sonnet-4-5-20250929-v1:0 \\
             --messages '[{{"role":"user","content":[{{"text":"Hello"}}]}}]'
  env:     AWS_ENDPOINT_URL_BEDROCK_RUNTIME={url}
  cache:   KV snapshot budget {budget_mib:,} MiB ([cache] max_bytes); stats at {url}/cachepoint/cache
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cachepoint")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help=f"port (default {DEFAULT_PORT})")
    serve.add_argument("--config", type=Path, default=None, help="TOML config file (default $CACHEPOINT_CONFIG)")
    doctor = commands.add_parser("doctor", help="explain every cache miss in invocation logs (ours or Bedrock's)")
    doctor.add_argument("source", help="a log file, a folder (S3 layout or not), or s3://bucket/prefix")
    doctor.add_argument("--json", action="store_true", help="findings as JSON")
    report = commands.add_parser("report", help="cost and savings from invocation logs")
    report.add_argument("source", help="a log file, a folder, or s3://bucket/prefix")
    report.add_argument("--since", help="ISO time, inclusive (e.g. 2026-11-01T00:00:00Z)")
    report.add_argument("--until", help="ISO time, exclusive")
    args = parser.parse_args(argv)
    return {"serve": _serve, "doctor": _doctor, "report": _report}[args.command](args)


def _doctor(args: argparse.Namespace) -> int:
    catalog = Catalog.packaged()
    records = load_records(args.source)
    findings = analyse(records, catalog)
    if args.json:
        print(json.dumps(as_json(findings), indent=2))
    else:
        print(diagnosis(findings, cost_report(records, catalog)), end="")
    return 0


def _report(args: argparse.Namespace) -> int:
    records = [r for r in load_records(args.source) if _in_range(str(r.get("timestamp", "")), args.since, args.until)]
    print(cost_table(cost_report(records, Catalog.packaged())), end="")
    return 0


def _in_range(timestamp: str, since: str | None, until: str | None) -> bool:
    return (since is None or timestamp >= since) and (until is None or timestamp < until)


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(args.config, host=args.host, port=args.port)
    except ValueError as error:
        print(f"cachepoint: {error}", file=sys.stderr)
        return 2
    services = build_services(settings)
    url = f"http://{settings.host}:{settings.port}"
    print(BANNER.format(url=url, region=settings.region, budget_mib=settings.cache_max_bytes // 2**20), flush=True)
    uvicorn.run(create_app(services), host=settings.host, port=settings.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
