"""Faults in the operating system: executables, shared libraries, data files, the temp dir, name lookup."""

from __future__ import annotations

import random

from cligym_env.inversion.families.base import Context, Fault, FaultFamily, basename, q, reinstall_deb

LIB_DIRS = ("/usr/lib/x86_64-linux-gnu/", "/lib/x86_64-linux-gnu/")
# What the test runner, bash and apt themselves need: breaking these breaks the harness or the repair.
PROTECTED_EXECUTABLES = {
    "bash",
    "sh",
    "dash",
    "timeout",
    "rm",
    "env",
    "cat",
    "dpkg",
    "apt-get",
    "apt",
    "ldconfig",
}
PROTECTED_LIBRARY_PREFIXES = ("libc.so", "libm.so", "ld-linux", "libpthread", "libdl.so", "libtinfo", "libselinux",
                              "libpcre2-8", "libacl", "libattr", "libstdc++", "libgcc_s", "libapt", "libzstd",
                              "liblz4", "libbz2", "liblzma", "libsystemd", "libudev", "libgcrypt", "libgpg-error",
                              "libcap.so", "libxxhash", "libmd.so", "libcrypt.so", "libseccomp", "libgmp", "libz.so")  # fmt: skip
FALLBACK_EXECUTABLES = ("less", "more", "git", "file", "patch", "make", "gcc", "tar", "gzip", "diff", "sed", "grep",
                        "find", "stty", "tput", "id", "whoami", "hostname", "uname", "locale", "sort", "xz", "unzip")  # fmt: skip
FALLBACK_DATA_FILES = ("/etc/mime.types", "/usr/share/zoneinfo/UTC", "/usr/share/zoneinfo/Europe/London",
                       "/usr/share/zoneinfo/America/New_York", "/etc/ssl/openssl.cnf", "/usr/share/misc/magic.mgc",
                       "/etc/localtime", "/usr/share/zoneinfo/zone.tab", "/usr/share/zoneinfo/tzdata.zi")  # fmt: skip


def _executables(ctx: Context) -> list[str]:
    seen = ctx.probe.runtime.get("executables") or []
    names = [basename(p) for p in seen] or list(FALLBACK_EXECUTABLES)
    names = [n for n in dict.fromkeys(names) if n not in PROTECTED_EXECUTABLES and not n.startswith("python")]
    if not names:
        return []
    out = ctx.sh(
        "for n in "
        + " ".join(q(n) for n in names)
        + '; do p=$(command -v "$n") && [ ! -L "$p" ] && echo "$p"; done'
    )
    return [line.strip() for line in out.splitlines() if line.startswith("/")]


def _libraries(ctx: Context) -> list[str]:
    """Real files of system libraries the tests load (from the runtime probe, else ldd of the Python binaries)."""
    seen = ctx.probe.runtime.get("shared_libraries") or []
    if not seen:
        objects = [ctx.probe.real_python, *ctx.probe.dynload[:60]]
        objects += [
            f"{ctx.probe.site_packages}/{so}" for d in ctx.probe.dists.values() for so in d.get("native", [])
        ]
        out = ctx.sh(
            "ldd "
            + " ".join(q(o) for o in objects if o)
            + " 2>/dev/null | awk '/=> \\//{print $3}' | sort -u"
        )
        seen = [line.strip() for line in out.splitlines() if line.strip()]
    real = (
        ctx.sh("for f in " + " ".join(q(s) for s in seen) + '; do readlink -f "$f"; done | sort -u')
        if seen
        else ""
    )
    libs = [p.strip() for p in real.splitlines() if p.strip().startswith(LIB_DIRS)]
    return [p for p in libs if not basename(p).startswith(PROTECTED_LIBRARY_PREFIXES)]


class MissingExecutable(FaultFamily):
    name = "missing-executable"
    category = "dependencies-runtime"
    direction = "delete a program from the system that the tests (or the code under test) run"
    languages = ("*",)

    def targets(self, ctx: Context) -> list[str]:
        return _executables(ctx)

    def fault(self, ctx: Context, target: str, rng: random.Random) -> Fault | None:
        return self.deleted_packaged_file(
            ctx, target, "A program that used to be on the system is not found any more."
        )


class ExecutablePermission(MissingExecutable):
    name = "executable-permission"
    category = "file-system"
    direction = "remove the execute permission from a program that the tests run"

    def fault(self, ctx: Context, target: str, rng: random.Random) -> Fault:
        return self.make(
            target,
            [f"chmod {rng.choice(['a-x', '0644'])} {q(target)}"],
            [f"chmod 0755 {q(target)}"],
            "Running one of the system's programs fails with a permission error although we are root.",
            [f"chmod 755 {target}", f"chmod 0755 {target}", f"chmod +x {target}"],
        )


class DeletedSharedLibrary(FaultFamily):
    name = "deleted-shared-library"
    category = "dependencies-runtime"
    direction = "delete a system shared library that the interpreter or an extension module links against"
    languages = ("*",)

    def targets(self, ctx: Context) -> list[str]:
        return _libraries(ctx)

    def fault(self, ctx: Context, target: str, rng: random.Random) -> Fault | None:
        symptom = "Loading some compiled code fails because a shared library cannot be found."
        return self.deleted_packaged_file(ctx, target, symptom)


class CorruptedSharedLibrary(DeletedSharedLibrary):
    name = "corrupted-shared-library"
    category = "compatibility"
    direction = "truncate a system shared library so the dynamic loader rejects it"

    def fault(self, ctx: Context, target: str, rng: random.Random) -> Fault | None:
        package = ctx.owner(target)
        if not package:
            return None
        size = rng.choice([0, 100, 4096])
        return self.make(
            target,
            [f"head -c {size} {q(target)} > /tmp/.l && cat /tmp/.l > {q(target)} && rm -f /tmp/.l"],
            [reinstall_deb(package)],
            "Loading some compiled code fails with a low-level loader error.",
            [target, basename(target), f"install --reinstall -y {package}"],
        )


class ShadowedSharedLibrary(DeletedSharedLibrary):
    name = "shadowed-shared-library"
    category = "infrastructure"
    direction = (
        "put a broken copy of a shared library where the dynamic loader looks first, and refresh its cache"
    )

    def fault(self, ctx: Context, target: str, rng: random.Random) -> Fault | None:
        soname = ctx.sh(f"objdump -p {q(target)} 2>/dev/null | awk '/SONAME/{{print $2}}'").strip()
        soname = (
            soname
            or basename(target).split(".so")[0] + ".so." + basename(target).split(".so.")[-1].split(".")[0]
        )
        shadow = f"/usr/local/lib/{soname}"
        return self.make(
            target,
            [f"head -c 2048 {q(target)} > {q(shadow)} && ldconfig"],
            [f"rm -f {q(shadow)} && ldconfig"],
            "Compiled code fails to load one of its libraries, although the system's copy of it looks fine.",
            [shadow, "/usr/local/lib/"],
        )


class DeletedDataFile(FaultFamily):
    name = "deleted-data-file"
    category = "file-system"
    direction = "delete a data or configuration file, shipped by a system package, that the tests read"
    languages = ("*",)

    def targets(self, ctx: Context) -> list[str]:
        seen = [
            p for p in ctx.probe.runtime.get("files_read") or [] if p.startswith(("/usr/share/", "/etc/"))
        ]
        return list(dict.fromkeys(seen or FALLBACK_DATA_FILES))

    def fault(self, ctx: Context, target: str, rng: random.Random) -> Fault | None:
        symptom = "Something that reads a system data file behaves as if the file did not exist."
        return self.deleted_packaged_file(ctx, target, symptom)


class BrokenTmp(FaultFamily):
    name = "broken-tmp-directory"
    category = "file-system"
    direction = "make /tmp unusable for creating temporary files"
    languages = ("*",)

    def targets(self, ctx: Context) -> list[str]:
        return ["/tmp"]

    def fault(self, ctx: Context, target: str, rng: random.Random) -> Fault:
        how = rng.choice(["file", "symlink"])
        breaks = (
            ["rm -rf /tmp && touch /tmp"] if how == "file" else ["rm -rf /tmp && ln -s /var/tmp/.gone /tmp"]
        )
        return self.make(
            f"/tmp:{how}",
            breaks,
            ["rm -rf /tmp && mkdir -m 1777 /tmp"],
            "Anything that needs a temporary file or directory fails.",
            ["mkdir -m 1777 /tmp", "chmod 1777 /tmp", "mkdir /tmp"],
        )


class HostsLookupBroken(FaultFamily):
    name = "hosts-lookup-disabled"
    category = "network-security"
    direction = "stop the resolver from consulting /etc/hosts, so localhost no longer resolves"
    languages = ("*",)

    def targets(self, ctx: Context) -> list[str]:
        return ["/etc/nsswitch.conf"]

    def fault(self, ctx: Context, target: str, rng: random.Random) -> Fault:
        return self.make(
            target,
            [r"sed -i 's/^hosts:.*/hosts:          dns/' /etc/nsswitch.conf"],
            [r"sed -i 's/^hosts:.*/hosts:          files dns/' /etc/nsswitch.conf"],
            "Connections to local services by name fail, connections by IP address still work.",
            ["nsswitch", "files dns"],
        )


class CaBundleRemoved(FaultFamily):
    name = "ca-bundle-removed"
    category = "network-security"
    direction = "remove the system's bundle of trusted CA certificates"
    languages = ("*",)

    def targets(self, ctx: Context) -> list[str]:
        return ["/etc/ssl/certs/ca-certificates.crt"]

    def fault(self, ctx: Context, target: str, rng: random.Random) -> Fault:
        return self.make(
            target,
            [f"rm -f {target}"],
            ["update-ca-certificates --fresh >/dev/null"],
            "TLS certificate verification fails everywhere, as if no authority were trusted.",
            ["ca-certificates.crt", "update-ca-certificates"],
        )


FAMILIES = (
    MissingExecutable(),
    ExecutablePermission(),
    DeletedSharedLibrary(),
    CorruptedSharedLibrary(),
    ShadowedSharedLibrary(),
    DeletedDataFile(),
    BrokenTmp(),
    HostsLookupBroken(),
    CaBundleRemoved(),
)
