import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

/** The part of an AudioContext that pageAudio uses: its state, resume() and statechange. */
class FakeContext extends EventTarget {
  static made: FakeContext[] = [];
  state: string = "suspended";
  resumes = 0;

  constructor() {
    super();
    FakeContext.made.push(this);
  }

  resume(): Promise<void> {
    this.resumes += 1;
    return Promise.resolve();
  }

  become(state: string): void {
    this.state = state;
    this.dispatchEvent(new Event("statechange"));
  }
}

async function freshPageAudio(): Promise<() => FakeContext> {
  vi.resetModules(); // the page's context lives in the module
  const { pageAudio } = await import("./level");
  return () => pageAudio() as unknown as FakeContext;
}

describe("pageAudio", () => {
  beforeEach(() => {
    FakeContext.made = [];
    vi.stubGlobal("AudioContext", FakeContext);
    vi.stubGlobal("window", new EventTarget());
  });
  afterEach(() => vi.unstubAllGlobals());

  it("makes one context for the page and asks it to resume at each use until it runs", async () => {
    const pageAudio = await freshPageAudio();
    const first = pageAudio();
    expect(pageAudio()).toBe(first);
    expect(FakeContext.made).toHaveLength(1);
    expect(first.resumes).toBe(2);
    first.become("running");
    pageAudio();
    expect(first.resumes).toBe(2);
  });

  it("resumes at every activating gesture while suspended, not at a pointerdown", async () => {
    const context = (await freshPageAudio())();
    const before = context.resumes;
    window.dispatchEvent(new Event("pointerdown")); // a touch's pointerdown may not start audio
    expect(context.resumes).toBe(before);
    window.dispatchEvent(new Event("pointerup")); // refused: the next gesture tries again
    window.dispatchEvent(new Event("touchend"));
    expect(context.resumes).toBe(before + 2);
    context.become("running");
    window.dispatchEvent(new Event("keydown"));
    expect(context.resumes).toBe(before + 2);
    context.become("interrupted"); // Safari, during a phone call: listen again
    window.dispatchEvent(new Event("click"));
    expect(context.resumes).toBe(before + 3);
  });

  it("makes a new context when the page's one was closed", async () => {
    const pageAudio = await freshPageAudio();
    const first = pageAudio();
    first.become("closed");
    expect(pageAudio()).not.toBe(first);
    expect(FakeContext.made).toHaveLength(2);
  });
});
