"""A small client for the classroom hub's REST API and a student's kernel.

Used by the deploy tests and by ``deploy/bench_spawn.py``; admins can use it
too (``python deploy/hubclient.py --help``). It talks only to the hub URL given.

    hub = HubClient("https://127.0.0.1:443", token=open("/srv/tinytorch/secrets/api_token").read().strip(),
                    ca="/srv/tinytorch/tls/hub.crt")
    hub.create_user("alice")
    hub.start_server("alice")                      # waits until it is ready
    print(hub.run_code("alice", "import tinytorch; print(tinytorch.__file__)"))
    hub.stop_server("alice")
"""
from __future__ import annotations

import argparse
import json
import ssl
import time
import uuid
from pathlib import Path

import requests
import websocket


class HubError(RuntimeError):
    """The hub or a student's server answered with an error; the message says which call."""


class HubClient:
    def __init__(self, url: str, token: str, ca: str | None = None, timeout: float = 30):
        self.url = url.rstrip("/")
        self.token = token
        self.ca = ca
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {token}"
        # Passed on every request: a REQUESTS_CA_BUNDLE in the environment would override session.verify.
        self.verify = ca if ca else True

    # ---------------------------------------------------------------- hub API
    def api(self, method: str, path: str, ok=(200, 201, 202, 204), **kwargs) -> requests.Response:
        response = self.session.request(method, f"{self.url}/hub/api{path}", timeout=self.timeout,
                                        verify=self.verify, **kwargs)
        if response.status_code not in ok:
            raise HubError(f"{method} /hub/api{path}: {response.status_code} {response.text[:300]}")
        return response

    def user(self, name: str) -> dict | None:
        response = self.api("GET", f"/users/{name}", ok=(200, 404))
        return response.json() if response.status_code == 200 else None

    def create_user(self, name: str) -> dict:
        existing = self.user(name)
        return existing if existing else self.api("POST", f"/users/{name}").json()

    def start_server(self, name: str, timeout: float = 300) -> float:
        """Start the user's server and wait until the hub says it is ready; return the seconds it took."""
        started = time.perf_counter()
        self.api("POST", f"/users/{name}/server", ok=(201, 202, 400))  # 400: already running
        deadline = started + timeout
        while time.perf_counter() < deadline:
            server = (self.user(name) or {}).get("servers", {}).get("")
            if server and server.get("ready"):
                return time.perf_counter() - started
            if server is None and time.perf_counter() - started > 5:
                raise HubError(f"{name}'s server is neither pending nor ready: the spawn failed (see the hub log)")
            time.sleep(0.25)
        raise HubError(f"{name}'s server was not ready within {timeout} s")

    def stop_server(self, name: str, timeout: float = 120) -> None:
        self.api("DELETE", f"/users/{name}/server", ok=(202, 204, 400))
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if not (self.user(name) or {}).get("servers"):
                return
            time.sleep(0.25)
        raise HubError(f"{name}'s server did not stop within {timeout} s")

    # ------------------------------------------------------- a student's server
    def server_api(self, name: str, method: str, path: str, **kwargs) -> requests.Response:
        response = self.session.request(method, f"{self.url}/user/{name}/api{path}", timeout=self.timeout,
                                        verify=self.verify, **kwargs)
        if response.status_code >= 400:
            raise HubError(f"{method} /user/{name}/api{path}: {response.status_code} {response.text[:300]}")
        return response

    def run_code(self, name: str, code: str, timeout: float = 120) -> str:
        """Run ``code`` in a new kernel on the user's server; return its stdout, raise HubError on an error."""
        kernel = self.server_api(name, "POST", "/kernels", json={"name": "python3"}).json()["id"]
        try:
            return self.execute(name, kernel, code, timeout)
        finally:
            self.server_api(name, "DELETE", f"/kernels/{kernel}")

    def kernel_channel(self, name: str, kernel: str, timeout: float = 120) -> KernelChannel:
        """A websocket to the user's running kernel (what a notebook page holds open), through the hub's proxy."""
        ws_url = self.url.replace("https://", "wss://").replace("http://", "ws://")
        session = uuid.uuid4().hex
        sslopt = {"ca_certs": self.ca} if self.ca else {"cert_reqs": ssl.CERT_REQUIRED}
        ws = websocket.create_connection(
            f"{ws_url}/user/{name}/api/kernels/{kernel}/channels?session_id={session}",
            header=[f"Authorization: token {self.token}"], sslopt=sslopt, timeout=timeout)
        return KernelChannel(ws, session, f"{name}'s kernel", timeout)

    def execute(self, name: str, kernel: str, code: str, timeout: float = 120) -> str:
        """Run ``code`` in the user's running kernel ``kernel``; return its stdout, raise HubError on an error."""
        channel = self.kernel_channel(name, kernel, timeout)
        try:
            return channel.run(code)
        finally:
            channel.close()


class KernelChannel:
    """An open websocket to one kernel: ``run(code)`` returns its stdout, or raises HubError on an error."""

    def __init__(self, ws, session: str, label: str, timeout: float):
        self.ws, self.session, self.label, self.timeout = ws, session, label, timeout

    def run(self, code: str) -> str:
        msg_id = uuid.uuid4().hex
        self.ws.send(json.dumps({
            "header": {"msg_id": msg_id, "username": "hubclient", "session": self.session,
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True},
        }))
        # The reply (shell channel) may overtake the output (iopub): done when both the reply and the kernel's
        # "idle" after this request, which follows all its output, have arrived.
        output, replied, idle, deadline = [], False, False, time.perf_counter() + self.timeout
        while time.perf_counter() < deadline and not (replied and idle):
            message = json.loads(self.ws.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = message["msg_type"]
            if kind == "stream":
                output.append(message["content"]["text"])
            elif kind == "error":
                content = message["content"]
                raise HubError(f"{content['ename']}: {content['evalue']}")
            elif kind == "execute_reply":
                replied = True
            elif kind == "status" and message["content"].get("execution_state") == "idle":
                idle = True
        if not (replied and idle):
            raise HubError(f"no reply from {self.label} within {self.timeout} s")
        return "".join(output)

    def close(self) -> None:
        self.ws.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Run code in a student's server through the hub.")
    parser.add_argument("--root", default="/srv/tinytorch", help="tinytorch_root of the deploy (secrets, tls)")
    parser.add_argument("--url", default="https://127.0.0.1:443")
    parser.add_argument("user")
    parser.add_argument("code")
    args = parser.parse_args()
    token = Path(args.root, "secrets", "api_token").read_text().strip()
    hub = HubClient(args.url, token, ca=str(Path(args.root, "tls", "hub.crt")))
    hub.create_user(args.user)
    hub.start_server(args.user)
    print(hub.run_code(args.user, args.code), end="")


if __name__ == "__main__":
    main()
