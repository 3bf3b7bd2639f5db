import { describe, expect, it } from "vitest";
import { ringingTitle } from "./call";

describe("ringingTitle", () => {
  it("alternates between who is calling and the page's own title", () => {
    const titles = [0, 1, 2, 3].map((tick) => ringingTitle("Sam", tick, "Direct calls · Salon"));
    expect(titles).toEqual([
      "📞 Sam is calling",
      "Direct calls · Salon",
      "📞 Sam is calling",
      "Direct calls · Salon",
    ]);
  });
});
