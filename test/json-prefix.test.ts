import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { JsonPrefix } from "../src/sampling/json-prefix.js";

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

/** Whether every prefix of `text` is accepted, and whether the whole is complete. */
function check(text: string): { everyPrefix: boolean; complete: boolean } {
  const state = new JsonPrefix();
  for (const b of bytes(text)) if (!state.pushBytes(Uint8Array.of(b))) return { everyPrefix: false, complete: false };
  return { everyPrefix: true, complete: state.complete };
}

describe("JSON prefixes (Ollama's format: json)", () => {
  it("accepts objects with every kind of value, byte by byte, and knows when one is complete", () => {
    for (const text of ['{"a": [1, -2.5e-3, 0, 10.0E+2, true, false, null, "x\\u00e9\\n é"], "b": {}, "c": [[], {"d": "}"}]}', "{}", '{\n  "k" : "v"\n}']) {
      assert.deepEqual(check(text), { everyPrefix: true, complete: true }, text);
      assert.equal(check(text.slice(0, -1)).complete, false);
      // every one also parses as JSON, and JSON.parse agrees with the verdict
      assert.doesNotThrow(() => JSON.parse(text));
    }
  });

  it("refuses what cannot begin a JSON object", () => {
    for (const text of ["[1]", '"a"']) assert.equal(check(text).everyPrefix, false, `${text}: the top level is an object`);
    for (const text of ['{"a" 1}', '{"a": 01}', "{,}", '{"a": tru}', '{"a": 1,}', '{"a": -}', '{"a": 1.}', '{"a": "\u0001"}', '{"a": "\\x"}', "{} {}", '{"a": 1]']) {
      assert.equal(check(text).everyPrefix && check(text).complete, false, text);
      assert.throws(() => JSON.parse(text));
    }
    assert.equal(check(`{\n${" ".repeat(21)}}`).everyPrefix, false, "a newline and at most 20 spaces");
    assert.equal(check('{  "a": 1}').everyPrefix, false, "one space, not two");
    assert.equal(check(' {"a": 1}').everyPrefix, false, "nothing before the object");
  });

  it("tries a candidate on a copy, leaving the state as it was", () => {
    const state = new JsonPrefix();
    assert.ok(state.pushBytes(bytes('{"a": ')));
    assert.equal(state.clone().pushBytes(bytes("}")), false);
    assert.ok(state.clone().pushBytes(bytes("12}")));
    assert.ok(state.pushBytes(bytes('"b"}')));
    assert.ok(state.complete);
  });
});
