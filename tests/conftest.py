"""Fixtures shared by every test module — kept small and generic on purpose.

* ``config``: the default configuration with its home folder in ``tmp_path``.
* ``warehouse``: a connected DuckDB warehouse (schema created) at ``config.warehouse_path``.
* ``moto_server``: one moto S3/SES server per test session on 127.0.0.1 (a free port),
  with fake AWS credentials and region in the environment; yields its endpoint URL.
  Tests point boto3 at it with ``monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)``
  and should use bucket names of their own (the server is shared).
"""

from __future__ import annotations

import os
from typing import Iterator

import pytest

from valuemail.config import Config, load_config
from valuemail.warehouse import connect

_FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@pytest.fixture
def config(tmp_path) -> Config:
    return load_config(home=tmp_path)


@pytest.fixture
def warehouse(config: Config):
    con = connect(config.warehouse_path)
    try:
        yield con
    finally:
        con.close()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    saved = {key: os.environ.get(key) for key in _FAKE_AWS_ENV}
    os.environ.update(_FAKE_AWS_ENV)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
