"""The Docker image without a Docker engine: read the Dockerfile and .dockerignore, stage exactly
what the image's COPY lines put in it, and install that the way its RUN line does."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Dockerfile:
    """The instructions the tests rely on, in the order the Dockerfile gives them."""

    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    copies: list[tuple[list[str], str, str]] = field(default_factory=list)  # (srcs, dest, workdir)
    runs: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    user: str = ""
    base: str = ""

    @classmethod
    def parse(cls, text: str) -> Dockerfile:
        """Parse one single-stage Dockerfile (no continuation lines, no COPY --from)."""
        found = cls()
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            op, _, rest = line.partition(" ")
            op = op.upper()
            if op == "FROM":
                found.base = rest.strip()
            elif op == "WORKDIR":
                found.workdir = str(PurePosixPath(found.workdir) / rest.strip())
            elif op == "ENV":
                found.env.update(dict(item.split("=", 1) for item in shlex.split(rest)))
            elif op == "COPY":
                words = shlex.split(rest)
                assert not any(w.startswith("--from") for w in words), "one stage only"
                words = [w for w in words if not w.startswith("--")]
                found.copies.append((words[:-1], words[-1], found.workdir))
            elif op == "RUN":
                found.runs.append(rest)
            elif op == "CMD":
                found.cmd = _json_list(rest)
            elif op == "USER":
                found.user = rest.strip()
            else:
                assert not line.endswith("\\"), f"continuation lines are not read: {line}"
        return found

    def python_version(self) -> str:
        """`3.11` of `FROM python:3.11-slim`."""
        match = re.fullmatch(r"python:(\d+\.\d+)[-.\w]*", self.base)
        assert match, f"FROM {self.base}: expected an official python image"
        return match.group(1)

    def pip_install(self) -> list[str]:
        """The arguments of the image's `pip install` (from its RUN line)."""
        for run in self.runs:
            for step in run.split("&&"):
                words = shlex.split(step)
                if words[:2] == ["pip", "install"]:
                    return words[2:]
        raise AssertionError("the Dockerfile has no `RUN pip install ...`")


def _json_list(text: str) -> list[str]:
    import json

    value = json.loads(text)
    assert isinstance(value, list), "CMD in exec form"
    return [str(v) for v in value]


class DockerIgnore:
    """.dockerignore rules as Docker applies them: patterns anchored at the context root, `*`
    within one path part, `**` across parts, `!` re-includes, the last matching rule wins, and
    a rule that matches a directory matches everything under it."""

    def __init__(self, text: str) -> None:
        self.rules: list[tuple[bool, re.Pattern[str]]] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            pattern = line[1:] if negate else line
            pattern = str(PurePosixPath(pattern.strip("/")))
            self.rules.append((negate, re.compile(_translate(pattern))))

    def excluded(self, path: str) -> bool:
        """Whether the context path (relative, with /) stays out of the build context."""
        parts = PurePosixPath(path).parts
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        verdict = False
        for negate, rule in self.rules:
            if any(rule.fullmatch(c) for c in candidates):
                verdict = not negate
        return verdict


def _translate(pattern: str) -> str:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return out


def read_dockerfile() -> Dockerfile:
    """The project's Dockerfile."""
    return Dockerfile.parse((ROOT / "Dockerfile").read_text())


def read_dockerignore() -> DockerIgnore:
    """The project's .dockerignore."""
    return DockerIgnore((ROOT / ".dockerignore").read_text())


def stage(image_root: Path, context: Path = ROOT) -> Dockerfile:
    """Copy into `image_root` (the image's /) what the Dockerfile's COPY lines copy, after
    .dockerignore, failing as `docker build` would on a missing or ignored source."""
    dockerfile = Dockerfile.parse((context / "Dockerfile").read_text())
    ignore = DockerIgnore((context / ".dockerignore").read_text())
    for sources, dest, workdir in dockerfile.copies:
        target = image_root / PurePosixPath(workdir, dest).relative_to("/")
        many = len(sources) > 1 or dest.endswith("/")
        for source in sources:
            origin = context / source
            relative = origin.relative_to(context).as_posix()
            assert origin.exists(), f"COPY {source}: not in the build context"
            assert not ignore.excluded(relative), f"COPY {source}: excluded by .dockerignore"
            if origin.is_dir():
                _copy_tree(origin, target, context, ignore)
            else:
                destination = target / origin.name if many else target
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, destination)
    return dockerfile


def _copy_tree(origin: Path, target: Path, context: Path, ignore: DockerIgnore) -> None:
    for path in sorted(origin.rglob("*")):
        relative = path.relative_to(context).as_posix()
        if path.is_dir() or ignore.excluded(relative):
            continue
        destination = target / path.relative_to(origin)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)


@dataclass
class InstalledImage:
    """A staged image installed into a fresh virtualenv: run its commands as the image would."""

    root: Path
    venv: Path
    dockerfile: Dockerfile
    staged: list[str] = field(default_factory=list)  # every file COPY put in, before the RUN

    @property
    def workdir(self) -> Path:
        return self.root / PurePosixPath(self.dockerfile.workdir).relative_to("/")

    switch_user: bool = False

    def as_user(self, argv: list[str]) -> list[str]:
        """`argv` run as the image's USER (numeric), as Docker runs commands and health checks:
        it can read the image but write nowhere in it, only to /tmp (as under Kubernetes'
        readOnlyRootFilesystem with an emptyDir on /tmp). As is when `install` could not."""
        user = self.dockerfile.user
        if not self.switch_user:
            return argv
        assert user.isdigit(), "USER must be numeric for Kubernetes' runAsNonRoot"
        return ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--", *argv]

    def env(self, extra: dict[str, str]) -> dict[str, str]:
        """A container's environment: the image's ENV, then the service's; nothing inherited
        from the test process (no PYTHONPATH, no settings of ours)."""
        return {
            "PATH": f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.root / "home"),
            **self.dockerfile.env,
            **extra,
        }


def install(tmp: Path) -> InstalledImage:
    """Stage the image under tmp/image and `pip install` it as its RUN line does, in a new venv
    (the whole dependency tree from the package index, as the image build gets it). `tmp` must
    be readable by the image's USER."""
    root = tmp / "image"
    dockerfile = stage(root)
    venv = tmp / "venv"
    python = _python_for_anyone(dockerfile.python_version())
    subprocess.run([python or sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    staged = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    switch = bool(python and dockerfile.user and os.geteuid() == 0 and shutil.which("setpriv"))
    image = InstalledImage(root, venv, dockerfile, staged, switch)
    # pip keeps this machine's own configuration (its package index), nothing else of ours.
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *dockerfile.pip_install()],
        cwd=image.workdir, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return image


def _python_for_anyone(version: str) -> str | None:
    """A `python<version>` that a user other than root can run with its standard library (the
    image's /usr/local one is; a pyenv build under /root is not), or None."""
    candidates = [Path(sys.executable).resolve(), Path(f"/usr/local/bin/python{version}"),
                  Path(f"/usr/bin/python{version}")]  # fmt: skip
    for candidate in candidates:
        real = candidate.resolve()
        if real.name == f"python{version}" and real.is_file() and _others_can_reach(real):
            return str(real)
    return None


def _others_can_reach(path: Path) -> bool:
    """Every folder above `path` is traversable, and `path` itself runnable, by anyone."""
    if not path.stat().st_mode & stat.S_IXOTH:
        return False
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in path.parents)
