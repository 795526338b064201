"""The job table's shape."""

from connectors.jobs.tables import JobRow, JobStatus


def test_statuses_are_the_documented_ones():
    assert [s.value for s in JobStatus] == ["queued", "running", "done", "failed", "dead"]


def test_the_table_has_lease_and_dedupe_columns_and_a_due_index():
    table = JobRow.__table__
    for column in (
        "name",
        "args",
        "run_at",
        "attempts",
        "lease_owner",
        "lease_expires_at",
        "status",
        "last_error",
        "dedupe_key",
        "created_at",
        "updated_at",
    ):
        assert column in table.c
    assert table.c.dedupe_key.unique
    assert any(ix.name == "ix_connector_jobs_due" for ix in table.indexes)
