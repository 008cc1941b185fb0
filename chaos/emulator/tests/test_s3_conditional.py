"""S3 conditional writes, which drpilot's shared state store (`--state s3://...`) is
built on. moto 5.2.5 implements them itself (no extension): PutObject with
`If-None-Match: *` fails with 412 PreconditionFailed when the key exists, PutObject with
`If-Match: <etag>` fails with 412 when the ETag differs and 404 NoSuchKey when there is
no object, as the AWS S3 API reference says. Requests are served one at a time under
the emulator's lock, so the check and the write are atomic, as S3 guarantees."""

from __future__ import annotations

import threading

import pytest
from botocore.exceptions import ClientError

BUCKET = "drpilot-state-test"


@pytest.fixture
def s3(emu):
    c = emu.client("s3", "us-west-2")
    c.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    return c


def code(e: ClientError) -> tuple[int, str]:
    return e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"]


def test_if_none_match_star_writes_only_a_new_key(s3):
    first = s3.put_object(Bucket=BUCKET, Key="runs/r/journal/0000000000.json", Body=b"a", IfNoneMatch="*")
    assert first["ETag"]
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=BUCKET, Key="runs/r/journal/0000000000.json", Body=b"b", IfNoneMatch="*")
    assert code(e.value) == (412, "PreconditionFailed")
    assert s3.get_object(Bucket=BUCKET, Key="runs/r/journal/0000000000.json")["Body"].read() == b"a"


def test_if_match_replaces_only_the_version_read(s3):
    etag = s3.put_object(Bucket=BUCKET, Key="locks/rb.lock", Body=b"v1", IfNoneMatch="*")["ETag"]
    etag2 = s3.put_object(Bucket=BUCKET, Key="locks/rb.lock", Body=b"v2", IfMatch=etag)["ETag"]
    assert etag2 != etag
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=BUCKET, Key="locks/rb.lock", Body=b"stale", IfMatch=etag)
    assert code(e.value) == (412, "PreconditionFailed")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=BUCKET, Key="locks/none.lock", Body=b"x", IfMatch=etag2)
    assert code(e.value) == (404, "NoSuchKey")
    assert s3.get_object(Bucket=BUCKET, Key="locks/rb.lock")["Body"].read() == b"v2"


def test_of_many_racing_if_none_match_writers_exactly_one_wins(emu, s3):
    for round_ in range(20):
        key = f"locks/race-{round_}.lock"
        results: list[str] = []

        def put(i: int) -> None:
            c = emu.client("s3", "us-west-2")
            try:
                c.put_object(Bucket=BUCKET, Key=key, Body=str(i).encode(), IfNoneMatch="*")
                results.append("won")
            except ClientError as e:
                results.append(code(e)[1])

        threads = [threading.Thread(target=put, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == ["PreconditionFailed"] * 5 + ["won"], (round_, results)
