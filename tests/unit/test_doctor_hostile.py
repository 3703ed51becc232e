"""The doctor and the cost report on hostile logs: every bad input is skipped and counted with its reason,
nothing raises, and the good records beside the damage are always read."""

from __future__ import annotations

import gzip
import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto.server import ThreadedMotoServer

from cachepoint.__main__ import main
from cachepoint.doctor.analysis import analyse, edit_span
from cachepoint.doctor.costs import cost_report
from cachepoint.doctor.reader import Limits, LoadResult, load_records
from cachepoint.doctor.skips import Rejected, SkipReason
from cachepoint.models.catalog import Catalog
from tests.live import free_port
from tests.unit.hostile_logs import Expected, bomb_member, line, record, with_input, write_hostile_folder

CATALOG = Catalog.packaged()
HOSTILE = [
    "malformed.json.gz", "malformed-header.json.gz", "truncated.json.gz", "deep.jsonl", "not-objects.jsonl",
    "wrong-types.jsonl", "nan.jsonl", "bad-time.jsonl", "bad-model.jsonl", "bomb.json.gz",
    "passwd.json", "huge.json", "loop.json", "again", "fifo.jsonl",
]  # fmt: skip
SYMLINKS = {"passwd.json", "huge.json", "loop.json", "again"}
Hostile = tuple[Path, dict[str, Expected], LoadResult]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Hostile:
    base = tmp_path_factory.mktemp("hostile")
    expected = write_hostile_folder(base / "logs", base / "outside")
    return base / "logs", expected, load_records(str(base / "logs"))


def reasons(loaded: LoadResult, source: str) -> dict[SkipReason, int]:
    return {s.reason: s.count for s in loaded.skipped if s.source == source}


def ids(loaded: LoadResult) -> list[str]:
    return [r.request_id or "" for r in loaded]


# every hostile input, in one folder and alone


def test_the_folder_holds_every_hostile_input(hostile: Hostile) -> None:
    assert set(hostile[1]) == {"good.jsonl", *HOSTILE}


@pytest.mark.parametrize("name", HOSTILE)
def test_in_a_folder_each_hostile_input_is_counted_with_its_reason_and_its_good_records_are_read(
    hostile: Hostile, name: str
) -> None:
    _, expected, loaded = hostile
    assert reasons(loaded, name) == expected[name].reasons
    assert set(expected[name].good_ids) <= set(ids(loaded))


def test_in_a_folder_exactly_the_good_records_are_read_and_every_skip_is_counted(hostile: Hostile) -> None:
    _, expected, loaded = hostile
    assert sorted(ids(loaded)) == sorted(i for e in expected.values() for i in e.good_ids)
    assert loaded.num_skipped == sum(n for e in expected.values() for n in e.reasons.values())
    assert [r.time_s for r in loaded] == sorted(r.time_s for r in loaded)


@pytest.mark.parametrize("name", sorted(set(HOSTILE) - SYMLINKS))
def test_alone_each_hostile_file_keeps_its_good_records(hostile: Hostile, name: str) -> None:
    root, expected, _ = hostile
    loaded = load_records(str(root / name))
    assert ids(loaded) == expected[name].good_ids
    assert reasons(loaded, str(root / name)) == expected[name].reasons


def test_a_symlink_named_on_the_command_line_is_followed_but_a_loop_is_a_skip(hostile: Hostile) -> None:
    root, _, _ = hostile
    loop = load_records(str(root / "loop.json"))
    assert not loop.records and reasons(loop, str(root / "loop.json")) == {SkipReason.SYMLINK: 1}
    passwd = load_records(str(root / "passwd.json"))  # the user chose it: read, and nothing in it is a record
    assert not passwd.records and set(reasons(passwd, str(root / "passwd.json"))) <= {SkipReason.INVALID_JSON}


# damage inside one file


def test_a_truncated_single_member_gzip_keeps_every_complete_line_before_the_cut(tmp_path: Path) -> None:
    data = gzip.compress(b"".join(line(record(f"r{i}")) for i in range(2000)))  # one member, as Bedrock writes
    path = tmp_path / "cut.json.gz"
    path.write_bytes(data[: len(data) // 2])
    loaded = load_records(str(path))
    assert 100 < len(loaded) < 2000
    assert ids(loaded) == [f"r{i}" for i in range(len(loaded))]  # a prefix, and no half line parsed
    assert reasons(loaded, str(path)) == {SkipReason.TRUNCATED_GZIP: 1}


def test_corrupt_deflate_data_keeps_the_lines_inflated_before_it(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(b"".join(line(record(f"r{i}")) for i in range(2000))))
    middle = len(data) // 2
    data[middle : middle + 64] = b"\xff" * 64
    path = tmp_path / "corrupt.json.gz"
    path.write_bytes(bytes(data))
    loaded = load_records(str(path))
    assert len(loaded) > 100 and ids(loaded)[:100] == [f"r{i}" for i in range(100)]
    assert SkipReason.MALFORMED_GZIP in reasons(loaded, str(path))


def test_non_gzip_bytes_after_a_member_keep_the_member(tmp_path: Path) -> None:
    path = tmp_path / "trailer.json.gz"
    path.write_bytes(gzip.compress(line(record("a"))) + b"\0\0\0" + gzip.compress(line(record("b"))) + b"tail")
    loaded = load_records(str(path))
    assert ids(loaded) == ["a", "b"] and reasons(loaded, str(path)) == {SkipReason.MALFORMED_GZIP: 1}


def test_a_line_over_the_document_cap_is_skipped_alone(tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    path.write_bytes(line(record("a")) + b'{"x": "' + b"y" * 200_000 + b'"}\n' + line(record("b")))
    loaded = load_records(str(path), Limits(max_document_bytes=100_000))
    assert ids(loaded) == ["a", "b"] and reasons(loaded, str(path)) == {SkipReason.DOCUMENT_TOO_LARGE: 1}


def test_a_file_over_the_size_cap_keeps_the_records_before_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_bytes(b"".join(line(record(f"r{i}")) for i in range(1000)))  # about 3.7 MB
    loaded = load_records(str(path), Limits(max_file_bytes=200_000))
    assert 0 < len(loaded) < 1000 and ids(loaded) == [f"r{i}" for i in range(len(loaded))]
    assert reasons(loaded, str(path)) == {SkipReason.TOO_LARGE: 1}


def test_a_single_member_bomb_stops_past_the_grace(tmp_path: Path) -> None:
    path = tmp_path / "zeros.json.gz"
    path.write_bytes(bomb_member(b"\0", 64 * 2**20))
    loaded = load_records(str(path))
    assert not loaded.records
    assert reasons(loaded, str(path)) == {SkipReason.GZIP_BOMB: 1}


def test_a_json_array_file_reads_its_objects_and_skips_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "array.json"
    path.write_text(json.dumps([record("a"), 7, "x", record("b", "yesterday"), record("c")], indent=2))
    loaded = load_records(str(path))
    assert ids(loaded) == ["a", "c"]
    assert reasons(loaded, str(path)) == {SkipReason.NOT_AN_OBJECT: 2, SkipReason.INVALID_RECORD: 1}


def test_a_first_line_that_is_an_array_is_a_bad_line_not_an_array_file(tmp_path: Path) -> None:
    path = tmp_path / "lines.jsonl"
    path.write_bytes(b"[1,2]\n" + line(record("a")))
    loaded = load_records(str(path))
    assert ids(loaded) == ["a"] and reasons(loaded, str(path)) == {SkipReason.NOT_AN_OBJECT: 1}


def test_skip_details_name_the_line_and_the_member(hostile: Hostile) -> None:
    _, _, loaded = hostile
    details = {(s.source, s.reason): s.detail for s in loaded.skipped}
    assert details["wrong-types.jsonl", SkipReason.INVALID_RECORD] == "line 1: input is not an object: 'x'"
    assert details["bad-model.jsonl", SkipReason.INVALID_RECORD] == "line 3: modelId is not a string: 42"
    assert details["nan.jsonl", SkipReason.INVALID_JSON] == "line 1: NaN is not a JSON number"
    assert details["deep.jsonl", SkipReason.TOO_DEEP] == "line 2: nested too deep for the JSON parser"


# analysis and costs see only typed records


def test_analysis_and_costs_run_on_what_survived(hostile: Hostile) -> None:
    _, expected, loaded = hostile
    findings = {f.request.request_id: f.cause for f in analyse(loaded, CATALOG)}
    assert findings["good-1"] == "first-write" and findings["good-2"] == "hit"
    assert findings["good-3"] == "region-switch"
    totals = cost_report(loaded, CATALOG).total
    assert totals.requests == len(loaded) and totals.unpriced == 2  # "::::" and the ARN of garbage


def test_a_bad_model_id_is_unpriced_in_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "models.jsonl"
    path.write_bytes(line(record("a")) + line({**record("b"), "modelId": "::::"})
                     + line({**record("c"), "modelId": "arn:aws:bedrock:us-east-1:123456789012:foundation-model/"}))  # fmt: skip
    assert main(["report", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("  total") and out.splitlines()[0].endswith("(2 unpriced)")
    assert "::::" in out


def test_analyse_still_takes_raw_records_and_rejects_an_invalid_one() -> None:
    assert [f.cause for f in analyse([record("a", read=0, write=1500)], CATALOG)] == ["first-write"]
    with pytest.raises(Rejected) as rejected:
        cost_report([with_input("b", inputTokenCount="abc")], CATALOG)
    assert rejected.value.reason is SkipReason.INVALID_RECORD


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.binary(max_size=300), cut=st.integers(min_value=0, max_value=400), zipped=st.booleans())
def test_any_bytes_after_a_good_record_never_raise_and_never_lose_it(
    tmp_path: Path, junk: bytes, cut: int, zipped: bool
) -> None:
    data = line(record("kept")) + junk
    if zipped:  # damage anywhere past the first member: truncation or garbage
        data = gzip.compress(line(record("kept"))) + gzip.compress(junk)[:cut] + junk[:cut]
    path = tmp_path / "junk.json.gz"
    path.write_bytes(data)
    loaded = load_records(str(path))
    assert "kept" in ids(loaded)
    analyse(loaded, CATALOG), cost_report(loaded, CATALOG)


@settings(max_examples=300, deadline=None)
@given(old=st.text("ab\u00e9\ud800", max_size=60), new=st.text("ab\u00e9\ud800", max_size=60))
def test_edit_span_agrees_with_a_character_loop(old: str, new: str) -> None:
    head = 0
    while head < min(len(old), len(new)) and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < min(len(old), len(new)) - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    span = edit_span(old, new)
    if head + tail < 0.9 * max(len(old), len(new)):
        assert span is None
    else:
        assert span is not None and span[0] == head


# the command line


def test_doctor_prints_the_findings_then_what_it_skipped(hostile: Hostile, capsys: pytest.CaptureFixture[str]) -> None:
    root, expected, loaded = hostile
    assert main(["doctor", str(root)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{len(loaded)} requests; ")
    assert (
        "MISS good-3 2026-11-20T10:02:00Z" in out and "region-switch — cached in us-west-2, served in us-east-2" in out
    )
    summary = err.splitlines()[0]
    assert summary.startswith(f"skipped {loaded.num_skipped} inputs: ")
    for part in ("2 malformed gzips (malformed-header.json.gz, malformed.json.gz)", "1 truncated gzip (truncated.json.gz)",
                 "1 gzip bomb (bomb.json.gz)", "4 symlinks (again, huge.json, loop.json, 1 more)",
                 "1 non-regular file (fifo.jsonl)", "4 invalid JSON lines (nan.jsonl ×4)",
                 "2 records nested too deep (deep.jsonl ×2)", "5 non-object records (not-objects.jsonl ×5)",
                 "13 invalid records (bad-model.jsonl, bad-time.jsonl ×3, wrong-types.jsonl ×9)"):  # fmt: skip
        assert part in summary
    assert "  bad-model.jsonl: line 3: modelId is not a string: 42" in err.splitlines()[2]
    assert err.splitlines()[-1] == f"  … and {len(loaded.skipped) - 10} more (--json lists them all)"
    assert "\x1b" not in out + err


def test_doctor_json_holds_the_findings_and_the_skips(hostile: Hostile, capsys: pytest.CaptureFixture[str]) -> None:
    root, expected, loaded = hostile
    assert main(["doctor", str(root), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert {f["requestId"] for f in document["findings"]} == set(ids(loaded))
    skipped = {(s["source"], s["reason"]): s["count"] for s in document["skipped"]}
    assert skipped[("wrong-types.jsonl", "invalid-record")] == 9 and skipped[("bomb.json.gz", "gzip-bomb")] == 1
    assert sum(skipped.values()) == loaded.num_skipped


def test_report_prints_costs_then_what_it_skipped(hostile: Hostile, capsys: pytest.CaptureFixture[str]) -> None:
    root, _, loaded = hostile
    assert main(["report", str(root)]) == 0
    out, err = capsys.readouterr()
    total = out.splitlines()[0]
    assert total.startswith("  total ") and f" {len(loaded)} req " in total and total.endswith(" (2 unpriced)")
    assert "  arn:aws:bedrock:xx:zz/../\\x1b[2J " in out and "\x1b" not in out  # a terminal escape, shown inert
    assert err.startswith(f"skipped {loaded.num_skipped} inputs: ")
    assert main(["report", str(root), "--since", "2026-11-20T10:01:00Z", "--until", "2026-11-20T10:05:00Z"]) == 0
    assert "     2 req " in capsys.readouterr().out.splitlines()[0]  # good-2 and good-3


@pytest.mark.parametrize("command", ["doctor", "report"])
def test_a_missing_source_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    assert main([command, str(tmp_path / "nowhere")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"cachepoint: no logs at {tmp_path / 'nowhere'}\n"


@pytest.mark.parametrize("command", ["doctor", "report"])
def test_nothing_readable_exits_2_and_says_what_was_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    (tmp_path / "bad.jsonl").write_bytes(b'"x"\n')
    (tmp_path / "cut.json.gz").write_bytes(gzip.compress(line(record("a")))[:30])
    (tmp_path / "empty.jsonl").write_bytes(b"")
    assert main([command, str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (f"cachepoint: no invocation records in {tmp_path}; skipped 2 inputs: "
                   "1 non-object record (bad.jsonl), 1 truncated gzip (cut.json.gz)\n")  # fmt: skip


def test_a_bad_since_is_an_argument_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["report", str(tmp_path), "--since", "last tuesday"])
    assert exit_.value.code == 2 and "--since: invalid iso_time value" in capsys.readouterr().err


def test_control_characters_and_lone_surrogates_are_printed_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    system = "Time \ud800 now. " + "The archive holds letters about shipments and weather. " * 40
    path = tmp_path / "odd.jsonl"
    path.write_bytes(line(record("first", "2026-11-20T10:00:00Z", read=0, write=1500, system=system))
                     + line(record("\x1b[2Jswitch", "2026-11-20T10:01:00Z", read=0, write=1500, region="us-east-2\n", system=system))
                     + line(record("edit", "2026-11-20T10:02:00Z", read=0, write=1500, system=system.replace("now", "\x07ow"))))  # fmt: skip
    assert main(["doctor", str(path)]) == 0  # capsys encodes strictly: an unescaped surrogate would raise
    out = capsys.readouterr().out
    assert "MISS \\x1b[2Jswitch" in out and "us-east-2\\n" in out and "\x1b" not in out and "\x07" not in out
    assert main(["report", str(path)]) == 0
    assert "us-east-2\\n" in capsys.readouterr().out


# s3:// sources: the same treatment per object


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A bucket on moto's server over real HTTP (as tests/e2e/test_s3_logs.py), reached the way users reach one."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for name, value in {"AWS_ACCESS_KEY_ID": "moto", "AWS_SECRET_ACCESS_KEY": "moto", "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_ENDPOINT_URL_S3": f"http://{host}:{port}"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    client = boto3.client("s3")
    client.create_bucket(Bucket="logs")
    yield client
    server.stop()


def test_s3_objects_are_skipped_one_by_one(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    prefix = "AWSLogs/111122223333/BedrockModelInvocationLogs/us-east-1/2026/11/20/10/"
    members = [gzip.compress(line(record(f"s3-{i}"))) for i in range(3)]
    objects = {
        "good.json.gz": members[0],
        "cut.json.gz": members[1] + members[2][:20],
        "bomb.json.gz": gzip.compress(line(record("s3-b"))) + bomb_member(b"\0", 32 * 2**20),
        "types.jsonl": line({**record("t"), "timestamp": 5}) + line(record("s3-t")),
        "data/x_input.json.gz": b"not a record file: never read",
    }
    for key, body in objects.items():
        s3.put_object(Bucket="logs", Key=prefix + key, Body=body)
    loaded = load_records("s3://logs/AWSLogs/")
    assert sorted(ids(loaded)) == ["s3-0", "s3-1", "s3-b", "s3-t"]
    assert {s.source.removeprefix(prefix): (s.reason, s.count) for s in loaded.skipped} == {
        "cut.json.gz": (SkipReason.TRUNCATED_GZIP, 1),
        "bomb.json.gz": (SkipReason.GZIP_BOMB, 1),
        "types.jsonl": (SkipReason.INVALID_RECORD, 1),
    }
    assert main(["doctor", "s3://logs/AWSLogs/"]) == 0
    assert capsys.readouterr().err.startswith("skipped 3 inputs: ")


def test_an_s3_listing_that_fails_exits_2(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "s3://no-such-bucket/logs/"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cachepoint: cannot list s3://no-such-bucket/logs/: ") and err.count("\n") == 1


# a gzip bomb, in a process of its own


def _limits() -> None:
    # should the cap ever regress, fail the child rather than the machine
    resource.setrlimit(resource.RLIMIT_AS, (8 * 2**30, 8 * 2**30))
    resource.setrlimit(resource.RLIMIT_CPU, (120, 120))


# Runs the CLI, then reports the peak RSS of this process image (VmHWM). getrusage's ru_maxrss would also
# count the forking parent's pages (the test process may hold gigabytes of engines), even across exec.
_PEAK = (
    "import sys\nfrom cachepoint.__main__ import main\ntry:\n    code = main(sys.argv[2:])\nfinally:\n"
    "    peak = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]\n"
    "    open(sys.argv[1], 'w').write(peak)\nsys.exit(code)\n"
)


def run_cli(args: list[str], scratch: Path) -> tuple[int, float, float, str, str]:
    """`cachepoint …` as a child: exit code, its own peak RSS in MiB, seconds, stdout, stderr."""
    peak = scratch / "peak-kib"
    with (scratch / "out").open("w+") as out, (scratch / "err").open("w+") as err:
        start = time.monotonic()
        code = subprocess.run([sys.executable, "-c", _PEAK, str(peak), *args], stdout=out, stderr=err,
                              preexec_fn=_limits, check=False).returncode  # fmt: skip
        seconds = time.monotonic() - start
        out.seek(0), err.seek(0)
        return code, int(peak.read_text()) / 1024, seconds, out.read(), err.read()


@pytest.mark.parametrize("unit", [b"\0", line(record("bomb"))], ids=["zeros", "a-record"])
def test_a_gzip_bomb_is_read_in_bounded_memory_and_time(tmp_path: Path, unit: bytes) -> None:
    member = bomb_member(unit, 8 * 2**20)
    path = tmp_path / "bomb.json.gz"
    path.write_bytes(gzip.compress(line(record("before-the-bomb"))) + member * 128)  # 1 GiB once inflated
    assert path.stat().st_size < 5 * 2**20
    code, rss_mib, seconds, out, err = run_cli(["doctor", str(path)], tmp_path)
    assert code == 0 and "Traceback" not in err
    num_requests = int(out.split(" ", 1)[0])  # "N requests; cache hit rate …"
    if unit == b"\0":
        assert num_requests == 1
    else:  # records inflated before the ratio tripped are kept: a few thousand of the bomb's 290,000
        assert 1 < num_requests < 10_000
    assert f"1 gzip bomb ({path})" in err
    assert rss_mib < 300, f"peak RSS {rss_mib:.0f} MiB"
    assert seconds < 30, f"{seconds:.1f} s"


def test_a_200_mib_line_in_a_plain_file_is_skipped_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    with path.open("wb") as file:
        file.write(line(record("before")))
        for _ in range(200):
            file.write(b"0" * 2**20)
        file.write(b"\n" + line(record("after")))
    code, rss_mib, seconds, out, err = run_cli(["doctor", str(path)], tmp_path)
    assert code == 0 and "Traceback" not in err
    assert out.startswith("2 requests; ")
    assert err.startswith(f"skipped 1 input: 1 line over the size cap ({path})")
    assert rss_mib < 300, f"peak RSS {rss_mib:.0f} MiB"
    assert seconds < 30, f"{seconds:.1f} s"
