"""A throwaway PostgreSQL server for the tests: `initdb` in a temporary folder, `pg_ctl
start` on a free port, stopped and removed at the end. Debian's `postgresql` package has
the binaries; as root they run as its `postgres` user (initdb refuses root)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


class NoPostgres(RuntimeError):
    """The PostgreSQL server binaries are not installed."""


def server_binaries() -> Path:
    """The folder holding initdb and pg_ctl; raises NoPostgres when there is none."""
    found = shutil.which("initdb")
    if found is None:
        # Debian keeps them out of PATH, one folder per major version.
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not candidates:
            raise NoPostgres(
                "PostgreSQL is not installed (initdb not found; apt-get install postgresql)"
            )
        found = candidates[-1]
    return Path(os.path.realpath(found)).parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PostgresServer:
    """One server, its superuser `postgres` trusted on 127.0.0.1 (no password)."""

    def __init__(self) -> None:
        self.bin = server_binaries()
        self.folder = Path(tempfile.mkdtemp(prefix="minerdesk-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, tool: str, *args: str) -> None:
        command = [*self._as_user, str(self.bin / tool), *args]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr or done.stdout}")

    def start(self) -> None:
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--no-locale", "--no-sync",
        )  # fmt: skip
        # Durability is not what these tests are about: fsync off makes them fast.
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            "pg_ctl", "start", "-w", "-t", "120", "-D", str(self.data), "-o", options,
            "-l", str(self.folder / "server.log"),
        )  # fmt: skip

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"


class Databases:
    """Fresh databases on a server: empty, or copies of one migrated once (a template copy
    takes milliseconds where migrating takes a second)."""

    TEMPLATE = "minerdesk_template"

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self._count = 0
        self._template_ready = False

    async def _admin(self, sql: str) -> None:
        import asyncpg

        connection = await asyncpg.connect(self.server.url())
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    async def create(self, migrated: bool = True) -> str:
        """A new database's URL: at the latest schema, or (not `migrated`) empty."""
        if migrated and not self._template_ready:
            from storage.postgres import PostgresStorage

            await self._admin(f"CREATE DATABASE {self.TEMPLATE}")
            # Opening migrates; closing leaves no connection, which a template needs.
            async with PostgresStorage(self.server.url(self.TEMPLATE)):
                pass
            self._template_ready = True
        self._count += 1
        name = f"test_{os.getpid()}_{self._count}"
        template = f" TEMPLATE {self.TEMPLATE}" if migrated else ""
        await self._admin(f"CREATE DATABASE {name}{template}")
        return self.server.url(name)

    async def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        await self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
