"""ContainerSession against real Docker: persistence, framing, timeouts, restarts, output cap, speed."""

from __future__ import annotations

import statistics
import time
import tracemalloc

import docker.errors
import pytest

from cligym_env.errors import CligymError
from cligym_env.runtime import containers
from cligym_env.runtime.session import ContainerSession


@pytest.fixture(scope="module")
def container(base_image):
    c = containers.start_container(base_image)
    yield c
    containers.remove_container(c)


@pytest.fixture
def session(container):
    with ContainerSession(container, workdir="/tmp", env={"GREETING": "hello there"}) as s:
        yield s


def test_cwd_and_env_persist(session):
    assert session.run("pwd").output == "/tmp\n"
    assert session.run("cd /etc && export COLOR=blue").exit_code == 0
    result = session.run('echo "$PWD $COLOR $GREETING $TERM $PAGER $GIT_PAGER"')
    assert result.output == "/etc blue hello there dumb cat cat\n"
    assert session.cwd == "/etc"


def test_exit_codes(session):
    assert [session.run(c).exit_code for c in ("true", "false", "(exit 42)", "no-such-command")] == [
        0,
        1,
        42,
        127,
    ]


def test_stderr_merged_in_order(session):
    result = session.run("for i in 1 2 3; do echo out$i; echo err$i >&2; done")
    assert result.output == "out1\nerr1\nout2\nerr2\nout3\nerr3\n"


@pytest.mark.parametrize(
    ("command", "output"),
    [
        ("printf abc", "abc"),
        ("printf 'abc\\n\\n'", "abc\n\n"),
        ("echo \"it's\" 'a \"quote\"' $'tab\\there'", 'it\'s a "quote" tab\there\n'),
        ("cat <<'EOF'\n$HOME `x` \\\n'\nEOF\necho after", "$HOME `x` \\\n'\nafter\n"),
        ("echo one \\\n  two", "one two\n"),
        ("echo trailing \\", "trailing \\\n"),
        ("if true; then\n  echo yes\nfi", "yes\n"),
        ("echo 'ünïcödé ✓'", "ünïcödé ✓\n"),
        ("echo $# ${1-unset}", "0 unset\n"),
        ("echo 'unterminated", None),  # a syntax error is the command's error, not the session's
    ],
)
def test_framing(session, command, output):
    result = session.run(command)
    if output is None:
        assert result.exit_code != 0 and "unexpected EOF" in result.output
    else:
        assert (result.output, result.exit_code) == (output, 0)
    assert session.run("echo next").output == "next\n"


def test_long_command(session):
    result = session.run("x='" + "a" * 100_000 + "'; echo ${#x}")
    assert result.output == "100000\n"


def test_stdin_is_dev_null(session):
    started = time.monotonic()
    result = session.run("cat; read x; echo read=$?", timeout=10)
    assert result.output == "read=1\n" and time.monotonic() - started < 2


def test_timeout_interrupts_and_keeps_shell(session):
    session.run("cd /usr && export KEEP=1")
    result = session.run("echo started; sleep 30; echo not-reached", timeout=1)
    assert result.timed_out and result.exit_code == 124 and not result.shell_restarted
    assert result.output == "started\n[cligym] command timed out after 1s\n"
    assert result.seconds < 4
    assert session.run("echo ok $PWD $KEEP").output == "ok /usr 1\n"


def test_timeout_reaches_the_whole_command(session):
    result = session.run("(sleep 30; echo a) | cat; bash -c 'sleep 30'; echo not-reached", timeout=1)
    assert result.exit_code == 124 and not result.shell_restarted and "not-reached" not in result.output
    assert result.seconds < 4
    assert "sleep 30" not in session.run("ps -eo args").output


def test_timeout_ignoring_sigint_restarts_shell(session):
    session.run("cd /var")
    result = session.run("trap '' INT; sleep 30", timeout=1)
    assert result.timed_out and result.shell_restarted and result.exit_code is None
    assert "shell was killed and a new one started" in result.output
    assert result.seconds < 8
    assert session.run("echo ok $PWD $GREETING").output == "ok /var hello there\n"
    assert "sleep 30" not in session.run("ps -eo args").output  # the whole process group was killed


@pytest.mark.parametrize(
    ("command", "code"), [("exit 3", 3), ("kill -9 $$", 137), ("set -e; false; echo no", 1)]
)
def test_shell_exit_is_reported_and_recovered(session, command, code):
    session.run("cd /opt")
    result = session.run(command)
    assert result.shell_restarted and result.exit_code == code
    assert result.output == f"[cligym] shell exited (code {code}); a new shell was started\n"
    assert session.run("echo ok $PWD").output == "ok /opt\n"


def test_shell_killed_between_commands(session):
    session.run("(sleep 0.2; kill -9 $$) >/dev/null 2>&1 &")
    time.sleep(1)
    result = session.run("echo ok")
    assert result.shell_restarted and result.exit_code == 0
    assert result.output.startswith("ok\n[cligym] the shell had exited (code 137)")


def test_output_cap_bounded_time_and_memory(session):
    tracemalloc.start()
    result = session.run("yes | head -c 200000000; echo; echo END", timeout=60)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result.exit_code == 0 and result.truncated and not result.timed_out
    assert result.seconds < 20 and peak < 20_000_000
    assert result.output.startswith("y\ny\n") and result.output.endswith("y\n\nEND\n")
    assert f"\n[... {200_000_005 - session.output_cap} bytes truncated ...]\n" in result.output
    assert len(result.output) < session.output_cap + 100


def test_binary_output(session):
    result = session.run("head -c 100000 /dev/urandom")
    assert result.exit_code == 0 and isinstance(result.output, str)
    assert session.run("printf 'ok\\xff\\xfe\\n'").output == "ok\ufffd\ufffd\n"
    assert session.run("echo fine").output == "fine\n"


def test_background_output_goes_to_a_later_command(session):
    session.run("(sleep 0.3; echo late) &")
    time.sleep(0.6)
    assert session.run("echo now").output == "late\nnow\n"


def test_run_true_is_fast(session):
    timings = []
    for _ in range(100):
        timings.append(session.run("true").seconds)
    assert statistics.median(timings) < 0.005


def test_owned_container_removed_on_close(base_image):
    session = ContainerSession.start(base_image, workdir="/work/dir", output_cap=1000)
    container = session.container
    assert session.run("pwd").output == "/work/dir\n"  # docker creates the workdir
    session.close()
    session.close()
    with pytest.raises(docker.errors.NotFound):
        container.reload()
    with pytest.raises(CligymError, match="closed"):
        session.run("true")


def test_unowned_container_survives_close(container):
    ContainerSession(container).close()
    container.reload()
    assert container.status == "running"


def test_missing_workdir(container):
    with pytest.raises(CligymError, match="cannot cd to /no/such/dir"):
        ContainerSession(container, workdir="/no/such/dir")


def test_profile_is_read_like_the_login_shell_tests_run_in(base_image):
    c = containers.start_container(base_image)
    try:
        containers.exec_once(
            c, "echo 'export CLIGYM_FROM_PROFILE=yes' > /etc/profile.d/zz-test.sh", timeout=10
        )
        with ContainerSession(c) as s:
            assert s.run('echo "$CLIGYM_FROM_PROFILE"').output == "yes\n"
        assert containers.exec_once(c, 'echo "$CLIGYM_FROM_PROFILE"', timeout=10).output == "yes\n"
    finally:
        containers.remove_container(c)


# -- the disk limit and a container that goes away -------------------------------------------------------


def test_disk_limit_interrupts_the_command_that_crosses_it(base_image):
    limits = containers.ContainerLimits(disk=100 << 20)
    with ContainerSession.start(base_image, limits=limits) as s:
        assert s.disk_limit == 100 << 20
        writer = (
            "for i in $(seq 30); do head -c 10000000 /dev/zero >> /big; sleep 0.2; done; echo all-written"
        )
        result = s.run(writer, timeout=60)
        assert result.disk_exceeded and not result.timed_out and not result.container_gone
        assert "all-written" not in result.output and result.seconds < 8
        assert "over its disk limit of 100 MiB: the command was interrupted" in result.output
        size = int(s.run("stat -c %s /big").output)
        assert 100_000_000 <= size < 300_000_000
        after = s.run("rm -f /big; echo ok")
        assert after.output == "ok\n" and not after.disk_exceeded


def test_disk_limit_zero_is_not_watched(container):
    with ContainerSession(container, disk_limit=0) as s:
        assert s.run("echo ok").output == "ok\n" and not s.disk_limit


def test_kill_1_stops_the_container_and_run_says_so(base_image):
    with ContainerSession.start(base_image) as s:
        result = s.run("kill 1; sleep 5", timeout=20)
        assert result.container_gone and result.exit_code is None and not result.timed_out
        assert "[cligym] the container is not running (state: exited)" in result.output
        assert s.container_state() == "exited"
        again = s.run("echo hi")
        assert again.container_gone and again.exit_code is None and again.seconds < 5
        assert s.run("echo hi").container_gone  # and again: the session stays usable, nothing raises


def test_paused_container_then_unpaused(base_image):
    with ContainerSession.start(base_image, workdir="/tmp") as s:
        s.run("cd /etc")
        s.container.pause()
        try:
            result = s.run("echo hi", timeout=1)
            assert result.container_gone or result.timed_out
            assert result.exit_code is None and s.container_state() == "paused"
            assert "[cligym] the container is paused" in result.output
            assert s.run("echo hi", timeout=1).container_gone
        finally:
            s.container.unpause()
        after = s.run("echo back $PWD")
        assert after.exit_code == 0 and after.output.startswith("back /etc\n") and after.shell_restarted
        assert not after.container_gone
        assert s.run("echo fine").output == "fine\n"


@pytest.mark.parametrize("how", ["kill", "remove"])
def test_container_killed_or_removed_from_outside(base_image, how):
    with ContainerSession.start(base_image) as s:
        assert s.run("echo up").output == "up\n"
        if how == "kill":
            s.container.kill()
        else:
            containers.remove_container(s.container)
        result = s.run("echo hi", timeout=5)
        assert result.container_gone and result.exit_code is None
        assert s.container_state() == ("exited" if how == "kill" else "removed")
        assert how in ("kill", "remove") and s.run("true").container_gone


def test_no_shell_can_start_is_container_gone(base_image):
    with ContainerSession.start(base_image) as s:
        s.run("mv /bin/bash /bin/bash.gone; mv /usr/bin/bash /usr/bin/bash.gone 2>/dev/null; exit 0")
        result = s.run("echo hi")
        assert result.container_gone and result.exit_code is None
        assert "no shell could be started" in result.output
        assert s.container_state() == "running"
