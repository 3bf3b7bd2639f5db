import { describe, expect, it } from "vitest";
import { distinctLabels, handsFirst, nameKey } from "./names";

const labels = (...names: string[]) => [
  ...distinctLabels(names.map((name, i) => ({ id: `m${i}`, name }))).values(),
];

describe("distinctLabels", () => {
  it("leaves different names as they are", () => {
    expect(labels("Ann", "Bob", "Carol")).toEqual(["Ann", "Bob", "Carol"]);
  });

  it("numbers later people of the same name, in join order", () => {
    expect(labels("Sam", "Bob", "Sam", "Sam")).toEqual(["Sam", "Bob", "Sam (2)", "Sam (3)"]);
  });

  it("counts names that only look different as the same", () => {
    expect(labels("Sam", "sam", "Ｓａｍ", "Sa\u200dm", "Sam\u3164")).toEqual([
      "Sam",
      "sam (2)",
      "Ｓａｍ (3)",
      "Sa\u200dm (4)",
      "Sam\u3164 (5)",
    ]);
  });

  it("never gives a label that is someone else's name", () => {
    expect(labels("Sam", "Sam", "Sam (2)")).toEqual(["Sam", "Sam (3)", "Sam (2)"]);
    expect(labels("Sam (2)", "Sam", "Sam")).toEqual(["Sam (2)", "Sam", "Sam (3)"]);
  });

  it("gives every id a label, the first of a name keeping it", () => {
    const map = distinctLabels([
      { id: "a", name: "Kim" },
      { id: "b", name: "Kim" },
    ]);
    expect(map.get("a")).toBe("Kim");
    expect(map.get("b")).toBe("Kim (2)");
  });

  it("keys names by NFKC, case and invisible characters", () => {
    expect(nameKey("ＣＡＲＬＡ")).toBe("carla");
    expect(nameKey("carla\ufe0f")).toBe("carla");
    expect(nameKey("car la")).toBe("carla");
    expect(nameKey("carla\u2800")).toBe("carla");
  });
});

describe("handsFirst", () => {
  it("puts raised hands first, by their place, and keeps the others' order", () => {
    const people = [
      { id: "me", hand: null },
      { id: "a", hand: 2 },
      { id: "b", hand: null },
      { id: "c", hand: 1 },
    ];
    expect(handsFirst(people).map((p) => p.id)).toEqual(["c", "a", "me", "b"]);
  });
});
