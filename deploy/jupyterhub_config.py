"""JupyterHub for a class on one machine, without root: `make hub` (see deploy/README.md).

Every student logs in with any name and the class's shared password, gets a JupyterLab server of their own (a
process of this environment, home folder ``<scratch>/home/<name>``), and pulls the course into it with the
nbgitpuller link that ``deploy/pull_link.py`` prints. This is the local demo: the students' servers run as the
same system user, so nothing stops one from reading another's files. For a real class use Zero to JupyterHub
(``deploy/z2jh-values.yaml``), where each server is a container with its own volume and limits.

Settings, all from the environment:
    XTLAB_HUB_SCRATCH   where the hub keeps its database, cookie secret and the homes (default deploy/.hub)
    XTLAB_HUB_PASSWORD  the class's shared password, at least 8 characters (default xtlab-class)
    XTLAB_HUB_PORT      the port students open (default 8000); the hub's API and the proxy's API take
    XTLAB_HUB_API_PORT / XTLAB_HUB_PROXY_API_PORT (default 8081 / 8001)
"""

import os
import sys
from pathlib import Path

c = get_config()  # noqa: F821 (JupyterHub's config loader defines it)

DEPLOY = Path(__file__).resolve().parent
SCRATCH = Path(os.environ.get("XTLAB_HUB_SCRATCH", DEPLOY / ".hub")).resolve()
SCRATCH.mkdir(parents=True, exist_ok=True)
PROXY = DEPLOY / ".proxy" / "node_modules" / ".bin" / "configurable-http-proxy"

# Ports on the loopback interface only: put a TLS reverse proxy in front before students reach it from elsewhere.
c.JupyterHub.bind_url = f"http://127.0.0.1:{os.environ.get('XTLAB_HUB_PORT', '8000')}"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{os.environ.get('XTLAB_HUB_API_PORT', '8081')}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ.get('XTLAB_HUB_PROXY_API_PORT', '8001')}"
c.ConfigurableHTTPProxy.command = [str(PROXY)]
c.ConfigurableHTTPProxy.pid_file = str(SCRATCH / "proxy.pid")
c.JupyterHub.db_url = f"sqlite:///{SCRATCH / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(SCRATCH / "jupyterhub_cookie_secret")

# Any user name, one shared password: enough for a workshop on a private machine.
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = os.environ.get("XTLAB_HUB_PASSWORD", "xtlab-class")
c.Authenticator.allow_all = True

# One server per student: a process of this environment (its kernel is this environment's python, with xtlab),
# started in the student's own home folder, created on first login.
c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
c.SimpleLocalProcessSpawner.home_dir_template = str(SCRATCH / "home" / "{username}")
c.Spawner.cmd = [str(Path(sys.executable).parent / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 60
# No news, no update checks, no extension look-ups on PyPI: a class's servers fetch nothing by themselves.
c.Spawner.args = [
    "--LabApp.news_url=None",
    "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    "--LabApp.extension_manager=readonly",
]
if os.geteuid() == 0:  # containers often run as root, which Jupyter refuses unless told
    c.Spawner.args.append("--ServerApp.allow_root=True")
# The browser test drives JupyterLab through its application object and tracks its processes by a marker.
if os.environ.get("XTLAB_HUB_EXPOSE_APP") == "1":
    c.Spawner.args.append("--LabApp.expose_app_in_browser=True")
if "XTLAB_E2E_RUN" in os.environ:
    c.Spawner.environment = {"XTLAB_E2E_RUN": os.environ["XTLAB_E2E_RUN"]}
