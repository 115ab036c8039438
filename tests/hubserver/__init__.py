"""A local Hugging Face Hub for tests: `HubServer` plus helpers pointing clients at it.

    from hubserver import HubServer   # or tests.hubserver, depending on sys.path

    with HubServer(tokens={"hf_test_token": "alice"}) as hub:
        hub.endpoint                                  # "http://127.0.0.1:PORT"
        with hub.client(token="hf_test_token"):       # this process -> local hub
            ...
        subprocess.run(..., env=hub.env(token="hf_test_token", hf_home=tmp))

See `server.py` for the implemented routes and `client.py` for what the client helpers patch.
"""

from .client import hub_client, hub_env
from .server import HubServer

__all__ = ["HubServer", "hub_client", "hub_env"]
