"""salon.server.process: what ``salon serve`` tunes in its own process."""

from __future__ import annotations

import resource

from salon.server.process import HeapTidy, raise_fd_limit


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_heap_is_tidied_once_enough_connections_closed() -> None:
    clock = FakeClock()
    tidy = HeapTidy(min_closed=64, share=0.25, min_interval=10.0, clock=clock)
    clock.now = 20.0
    assert not tidy.observe(1000)  # opened: nothing closed yet
    assert not tidy.observe(960)  # 40 closed: under min_closed
    assert not tidy.observe(900)  # 100 closed, but under a quarter of the 900 still open
    assert tidy.observe(0)  # all closed
    assert not tidy.observe(0)  # nothing new
    assert not tidy.observe(200)
    assert not tidy.observe(0)  # 200 closed, but 10 s have not passed since the last
    clock.now = 31.0
    assert tidy.observe(0)


def test_the_fd_limit_is_raised_to_the_hard_limit() -> None:
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, before[1]), before[1]))
        soft, hard = raise_fd_limit()
        assert (soft, hard) == resource.getrlimit(resource.RLIMIT_NOFILE)
        assert soft == hard or hard == resource.RLIM_INFINITY
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, before)
