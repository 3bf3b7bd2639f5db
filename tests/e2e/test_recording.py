"""Recording a meeting from the page (issue 14): a host presses Record, the server starts its
recorder (``salon bot record``) for the room, both people see the "Recording" badge while it
runs, Stop ends it, and the host downloads the files through the Recordings panel's links.

The files are proven by opening them: the participant's WebM with PyAV (video frames, audio
samples, a duration within a second of the time media went to the recorder), and the chat's
JSON Lines holding the messages sent. One browser for the module, a context per person.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Person, salon_server, screenshot, screenshots, stats, tile
from tests.e2e.test_hosts import start_meeting
from tests.support import CHROMIUM_ARGS_20_FPS, launched_chromium

pytestmark = pytest.mark.e2e

# How long the meeting is recorded once media reaches the recorder (s).
RECORD_SECONDS = 5.0
# The bound: a file's duration is within this of the time recorded (s).
DURATION_TOLERANCE = 1.0
MESSAGES = {"ann": "Hello from ann, on the record", "bob": "bob here: <b>not bold</b> ✓"}


def enter(page: Any, room: str, name: str) -> None:
    page.goto(f"/r/{room}")
    page.get_by_label("Your name").fill(name)
    page.get_by_test_id("prejoin-join").click()
    page.get_by_test_id("room").wait_for()


def control(page: Any, test_id: str) -> None:
    """Press a control of the bar, through "More" when the bar has no room for it."""
    if page.get_by_test_id(test_id).count() == 0:
        page.get_by_test_id("control-more").click()
    page.get_by_test_id(test_id).click()


def say(page: Any, text: str) -> None:
    if page.get_by_test_id("chat-input").count() == 0:
        control(page, "control-chat")
    page.get_by_test_id("chat-input").fill(text)
    page.get_by_test_id("chat-input").press("Enter")
    page.get_by_test_id("chat-entry").filter(has_text=text).wait_for()


def sending_to(page: Any, name: str) -> bool:
    """Whether this page has sent audio and video to the member labelled ``name``."""
    out = stats(page).get(name)
    return out is not None and out["videoBytesSent"] > 0 and out["audioBytesSent"] > 0


def wait_until(condition: Any, what: str, timeout: float = 30.0, step_ms: int = 50) -> float:
    """Poll ``condition()`` until true; returns the monotonic time of the check that held."""
    deadline = time.monotonic() + timeout
    while True:
        checked = time.monotonic()
        if condition():
            return checked
        if checked > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(step_ms / 1000)


def download(page: Any, item: Any, folder: Path) -> Path:
    """Click a file's link in the Recordings panel; the browser downloads it (attachment)."""
    name: str = item.get_attribute("data-name")
    with page.expect_download() as info:
        item.get_by_test_id("recording-download").click()
    target = folder / name
    info.value.save_as(target)
    assert info.value.suggested_filename == name
    return target


def media_facts(path: Path) -> tuple[int, int, float]:
    """Video frames decoded, audio samples decoded and the container's duration (s)."""
    import av

    frames = samples = 0
    with av.open(str(path)) as container:
        assert container.streams.video and container.streams.audio, "a stream is missing"
        duration = (container.duration or 0) / av.time_base
        for frame in container.decode(video=0, audio=0):
            if isinstance(frame, av.AudioFrame):
                samples += frame.samples
            else:
                frames += 1
    return frames, samples, duration


@pytest.fixture(scope="module")
def browser(playwright_instance: Any) -> Iterator[Any]:
    """The module's Chromium, told to accept the test server's self-signed certificate for
    every request. Playwright's per-context ``ignore_https_errors`` covers the pages, not the
    browser's download manager, which fetches a ``<a download>`` link itself and cancels it
    on the certificate (a browser facing a real certificate needs neither). The camera at 20
    frames a second: the file's frame count below was measured at that rate."""
    args = [*CHROMIUM_ARGS_20_FPS, "--ignore-certificate-errors"]
    with launched_chromium(playwright_instance, args) as browser:
        yield browser


def test_a_host_records_the_meeting_and_downloads_the_files(person: Person, tmp_path: Path) -> None:
    ann, bob = person(), person()
    room = start_meeting(ann, "ann")
    enter(bob, room, "bob")
    tile(ann, "bob").wait_for()

    control(ann, "control-record")
    # A note, faded after a few seconds: wait for it now, before the recorder has joined.
    ann.get_by_test_id("room-note").filter(has_text="You started recording").first.wait_for()
    # Recorded from here: ann's media reaches the recorder (hers is the file checked below).
    started = wait_until(lambda: sending_to(ann, "Recorder"), "ann's media to reach the recorder")
    wait_until(lambda: sending_to(bob, "Recorder"), "bob's media to reach the recorder")
    for page in (ann, bob):
        page.get_by_test_id("badge-recording").wait_for()
        # The recorder is no one's tile and no head in the count; the list names it.
        assert page.get_by_test_id("member-count").inner_text().startswith("2")
        assert tile(page, "Recorder").count() == 0

    say(ann, MESSAGES["ann"])
    say(bob, MESSAGES["bob"])
    control(ann, "control-recordings")
    running = ann.locator('[data-testid="recording"][data-state="running"]')
    running.wait_for()
    control(bob, "control-people")
    bob.locator('[data-testid="person"][data-recording="true"]').wait_for()
    screenshots(bob, "recording-badge")
    screenshots(ann, "recordings-running")
    ann.wait_for_timeout(max(0.0, started + RECORD_SECONDS - time.monotonic()) * 1000)

    ann.get_by_test_id("recordings-record").click()  # "Stop recording"
    recorded = time.monotonic() - started
    for page in (ann, bob):
        page.get_by_test_id("badge-recording").wait_for(state="detached", timeout=15_000)
    print(f"recorded {recorded:.2f} s; the recorder left {time.monotonic() - started:.2f} s in")

    finished = ann.locator('[data-testid="recording"][data-state="finished"]')
    finished.locator('[data-testid="recording-file"][data-name="chat.jsonl"]').wait_for(
        timeout=20_000
    )
    assert ann.get_by_test_id("recordings-record").inner_text().strip() == "Record"
    assert bob.get_by_test_id("control-record").count() == 0  # not a host: no Record
    screenshots(ann, "recordings-panel")

    files = finished.get_by_test_id("recording-file")
    names = [files.nth(i).get_attribute("data-name") for i in range(files.count())]
    webm = [n for n in names if n is not None and n.startswith("ann-") and n.endswith(".webm")]
    assert len(webm) == 1, f"no single file of ann's in {names}"
    assert any(n is not None and n.startswith("bob-") for n in names), names

    path = download(ann, finished.locator(f'[data-name="{webm[0]}"]'), tmp_path)
    frames, samples, duration = media_facts(path)
    assert frames > RECORD_SECONDS * 5, f"only {frames} video frames in {recorded:.1f} s"
    assert samples > RECORD_SECONDS * 8000, f"only {samples} audio samples in {recorded:.1f} s"
    assert abs(duration - recorded) <= DURATION_TOLERANCE, (
        f"the file lasts {duration:.2f} s, {recorded:.2f} s were recorded"
    )

    chat = download(ann, finished.locator('[data-name="chat.jsonl"]'), tmp_path)
    lines = [json.loads(line) for line in chat.read_text("utf-8").splitlines() if line.strip()]
    assert [(m["name"], m["text"]) for m in lines] == [
        ("ann", MESSAGES["ann"]),
        ("bob", MESSAGES["bob"]),
    ]


def test_a_server_that_cannot_record_says_so_to_the_host(
    person: Person, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data = tmp_path_factory.mktemp("salon-no-recording")
    with salon_server(data, {"SALON_RECORDINGS__ENABLED": "false"}) as url:
        ann = person(base_url=url)
        start_meeting(ann, "ann")
        control(ann, "control-record")
        problem = ann.get_by_test_id("room-problem")
        problem.get_by_text("Recording is not available", exact=False).wait_for()
        assert ann.get_by_test_id("badge-recording").count() == 0
        assert ann.get_by_test_id("control-record").is_enabled()  # no longer waiting
        screenshot(ann, "recording-unavailable")
