"""The results folder never writes through a link or into a file the tool did not write: a folder that was
shared, copied or unpacked may carry links, and what they point at must survive untouched."""

import os
from pathlib import Path

import pytest

from unet_bench import BenchError
from unet_bench.suite.store import LOCK_FILE, RESULTS_FILE, ResultsWriter, locked, read_records

PRECIOUS = b"line one of someone's notes\nand a last line without a newline"


@pytest.fixture
def precious(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_bytes(PRECIOUS)
    return path


def test_a_lock_that_is_a_symlink_is_refused_and_its_target_survives(tmp_path, precious):
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_FILE).symlink_to(precious)
    with pytest.raises(BenchError, match=r"\.lock is a symbolic link; a lock file is never written through a link"):
        with locked(out):
            pass
    assert precious.read_bytes() == PRECIOUS and (out / LOCK_FILE).is_symlink()


def test_results_that_are_a_symlink_are_refused_and_the_target_survives(tmp_path, precious):
    out = tmp_path / "out"
    out.mkdir()
    (out / RESULTS_FILE).symlink_to(precious)
    with pytest.raises(BenchError, match="results.jsonl is a symbolic link; the results file is never written"):
        ResultsWriter(out / RESULTS_FILE)
    assert precious.read_bytes() == PRECIOUS


def test_a_hard_linked_results_file_is_refused(tmp_path):
    original = tmp_path / "backup.jsonl"
    original.write_bytes(b'{"case_id": "a", "status": "ok"}\n')
    os.link(original, tmp_path / RESULTS_FILE)
    with pytest.raises(BenchError, match="has 1 other hard link"):
        ResultsWriter(tmp_path / RESULTS_FILE)
    assert original.read_bytes() == b'{"case_id": "a", "status": "ok"}\n'


def test_a_file_holding_no_record_is_refused_not_truncated(tmp_path):
    path = tmp_path / RESULTS_FILE
    path.write_bytes(PRECIOUS.splitlines()[1])  # one line, no newline, not JSON: looks like a torn line
    with pytest.raises(BenchError, match="holds no record, only 33 bytes that are not one"):
        ResultsWriter(path)
    assert path.read_bytes() == PRECIOUS.splitlines()[1]


def test_a_torn_line_is_cut_only_when_a_record_is_appended(tmp_path):
    path = tmp_path / RESULTS_FILE
    path.write_bytes(b'{"n": 1}\n{"n": 2')
    with ResultsWriter(path) as writer:
        assert writer.back.records == [{"n": 1}] and writer.back.partial_line_bytes == 7
    assert path.read_bytes() == b'{"n": 1}\n{"n": 2'  # opened and closed: nothing changed
    with ResultsWriter(path) as writer:
        writer.append({"n": 3})
    assert path.read_bytes() == b'{"n": 1}\n{"n": 3}\n'
    path.write_bytes(b'{"n": 1}')  # complete but for its newline
    with ResultsWriter(path) as writer:
        writer.append({"n": 2})
    assert read_records(path).records == [{"n": 1}, {"n": 2}]


def test_a_lock_file_holding_anything_but_a_pid_is_refused_not_overwritten(tmp_path):
    (tmp_path / LOCK_FILE).write_bytes(PRECIOUS)
    with pytest.raises(BenchError, match="holds something other than a run's pid"):
        with locked(tmp_path):
            pass
    assert (tmp_path / LOCK_FILE).read_bytes() == PRECIOUS


def test_a_pipe_or_a_folder_named_results_is_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / RESULTS_FILE)  # opening it for reading would wait for a writer forever
    for call in (read_records, ResultsWriter):
        with pytest.raises(BenchError, match="is not a regular file"):
            call(tmp_path / RESULTS_FILE)
    folder = tmp_path / "out"
    (folder / RESULTS_FILE).mkdir(parents=True)
    for call in (read_records, ResultsWriter):
        with pytest.raises(BenchError, match="is not a regular file"):
            call(folder / RESULTS_FILE)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_results_file_is_one_line(tmp_path):
    path = tmp_path / RESULTS_FILE
    path.write_text('{"n": 1}\n')
    path.chmod(0)
    with pytest.raises(BenchError, match="results.jsonl: cannot read it: Permission denied"):
        read_records(path)
