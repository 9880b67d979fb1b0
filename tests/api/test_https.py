"""HTTPS: with TLS_CERTFILE and TLS_KEYFILE the API serves TLS on its port (uvicorn), verified against the CA that
signed the certificate, as clients do with REQUESTS_CA_BUNDLE or SSL_CERT_FILE; plain HTTP gets no answer."""

from __future__ import annotations

import ssl

import httpx
import pytest

from tests.reliability.conftest import ApiServer

pytestmark = pytest.mark.slow


def test_the_api_serves_https_with_the_given_certificate(settings, tmp_path, tls):
    server = ApiServer(
        settings,
        tmp_path / "api.log",
        ca=tls.ca,
        TLS_CERTFILE=str(tls.cert),
        TLS_KEYFILE=str(tls.key),
        API_TOKEN="https-test-token-of-at-least-32-characters",
    ).start()
    try:
        assert server.base_url.startswith("https://")
        assert server.client.get("/health").json()["status"] == "ok"
        job = server.client.get(
            "/api/v2/accounts/1/jobs/1/", headers={"Authorization": "Token https-test-token-of-at-least-32-characters"}
        )
        assert job.status_code == 200 and job.json()["data"]["name"] == "features-mart"
        localhost = httpx.get(
            f"https://localhost:{server.port}/health", verify=ssl.create_default_context(cafile=str(tls.ca))
        )
        assert localhost.status_code == 200
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{server.base_url}/health", verify=ssl.create_default_context())  # the system CAs only
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(f"http://127.0.0.1:{server.port}/health")
    finally:
        server.stop()
    assert "Uvicorn running on https://127.0.0.1" in server.log_path.read_text()
