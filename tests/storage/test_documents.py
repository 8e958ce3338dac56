"""The run's own documents: ``run.json`` written once in one shape, and what marks a run root."""

import json

import pytest

from odist.errors import OutputError, StorageError
from odist.storage.documents import FLEET_SUMMARY, RUN_MANIFEST, is_run, read_document, start_run, write_fleet_summary
from odist.storage.run_root import check_run_root


def test_the_first_start_names_the_run_and_later_starts_keep_it(store):
    assert not is_run(store)
    start_run(store, {"input": "first.mp4", "config": {"device": "cpu"}})
    start_run(store, {"input": "second.mp4", "config": {"device": "cuda"}})
    assert is_run(store)
    assert json.loads(store.get(RUN_MANIFEST)) == {"input": "first.mp4", "config": {"device": "cpu"}}


def test_a_fleet_summary_alone_marks_a_run_root(store):
    store.put("notes.txt", b"not a run")
    with pytest.raises(OutputError, match="holds no odist run"):
        check_run_root(store)
    write_fleet_summary(store, {"streams": 0})
    check_run_root(store)  # now it is odist's
    assert read_document(store, FLEET_SUMMARY) == {"streams": 0}


@pytest.mark.parametrize("data, problem", [(b"{", "is not valid JSON"), (b"[1]", "is not a JSON object")])
def test_a_document_that_is_not_a_json_object_is_one_storage_error(store, data, problem):
    store.put("doc.json", data)
    with pytest.raises(StorageError, match=problem) as caught:
        read_document(store, "doc.json", "delete it")
    assert caught.value.fix == "delete it" and read_document(store, "absent.json") is None
