"""A stop signal never interrupts a tracking-store call: it is raised when the call has finished."""

import os
import signal

import pytest

from emo.core import signals


@pytest.fixture
def installed():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signals.install()
    yield
    for s, handler in before.items():
        signal.signal(s, handler)


def test_a_signal_inside_a_shielded_call_is_raised_once_the_outermost_call_has_finished(installed):
    steps = []

    @signals.shielded
    def store_call():
        with signals.shielded:  # nested: still held
            os.kill(os.getpid(), signal.SIGTERM)
            steps.append("inner finished")
        steps.append("outer finished")

    with pytest.raises(signals.Stopped) as stopped:
        store_call()
    assert steps == ["inner finished", "outer finished"]
    assert stopped.value.signum == signal.SIGTERM and isinstance(stopped.value, KeyboardInterrupt)


def test_a_signal_outside_any_shielded_call_is_raised_at_once(installed):
    with pytest.raises(signals.Stopped) as stopped:
        os.kill(os.getpid(), signal.SIGINT)
        raise AssertionError("not interrupted")
    assert stopped.value.signum == signal.SIGINT


def test_an_error_inside_a_shielded_call_is_not_replaced_by_the_signal_held_back(installed):
    with pytest.raises(ValueError):
        with signals.shielded:
            os.kill(os.getpid(), signal.SIGTERM)
            raise ValueError("the store refused")
    with signals.shielded:  # the held signal went with the error: nothing is raised later
        pass
