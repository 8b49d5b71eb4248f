/** What the JSON text so far expects next, outside strings, numbers and literals. */
const enum Expect {
  Value,
  KeyOrEnd,
  Key,
  Colon,
  CommaOrObjectEnd,
  ValueOrArrayEnd,
  CommaOrArrayEnd,
  Done,
}

const enum Scalar {
  None,
  String,
  Escape,
  Unicode,
  Number,
  Literal,
}

/** Whitespace as llama.cpp's json grammar allows it between tokens: nothing, one space, or a newline and up to 20 spaces or tabs. */
const MAX_INDENT = 20;
const isDigit = (b: number): boolean => b >= 0x30 && b <= 0x39;
const isSpace = (b: number): boolean => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;

/**
 * Byte by byte, whether text is the beginning of a JSON object (Ollama's `format: "json"`: an object
 * at the top). Cheap to copy, so that every candidate token can be tried on a copy.
 */
export class JsonPrefix {
  private expect: Expect = Expect.Value;
  /** The open containers: true for an object, false for an array. */
  private stack: boolean[] = [];
  private scalar: Scalar = Scalar.None;
  private stringIsKey = false;
  private unicodeLeft = 0;
  private literal = "";
  /** Number syntax so far: digits seen in the current part, and which parts have begun. */
  private number = { digits: 0, leadingZero: false, fraction: false, exponent: false, expSign: false, needDigit: true };
  /** The whitespace run so far: none, one space (nothing may follow), or a newline and its indent. */
  private whitespace: "none" | "space" | "newline" = "none";
  private indent = 0;

  get complete(): boolean {
    return this.expect === Expect.Done && this.scalar === Scalar.None;
  }

  clone(): JsonPrefix {
    const copy = new JsonPrefix();
    Object.assign(copy, this, { stack: [...this.stack], number: { ...this.number } });
    return copy;
  }

  /** Takes the bytes; false (and the state is then meaningless) when they cannot continue JSON. */
  pushBytes(bytes: Uint8Array): boolean {
    for (const b of bytes) if (!this.push(b)) return false;
    return true;
  }

  private afterValue(): void {
    if (this.stack.length === 0) this.expect = Expect.Done;
    else this.expect = this.stack[this.stack.length - 1] ? Expect.CommaOrObjectEnd : Expect.CommaOrArrayEnd;
  }

  private push(b: number): boolean {
    switch (this.scalar) {
      case Scalar.String:
        if (b === 0x22) {
          this.scalar = Scalar.None;
          if (this.stringIsKey) this.expect = Expect.Colon;
          else this.afterValue();
          return true;
        }
        if (b === 0x5c) this.scalar = Scalar.Escape;
        return b >= 0x20;
      case Scalar.Escape:
        if (b === 0x75) {
          this.scalar = Scalar.Unicode;
          this.unicodeLeft = 4;
          return true;
        }
        this.scalar = Scalar.String;
        return '"\\/bfnrt'.includes(String.fromCharCode(b));
      case Scalar.Unicode:
        if (!/[0-9a-fA-F]/.test(String.fromCharCode(b))) return false;
        if (--this.unicodeLeft === 0) this.scalar = Scalar.String;
        return true;
      case Scalar.Literal:
        if (String.fromCharCode(b) !== this.literal[0]) return false;
        this.literal = this.literal.slice(1);
        if (this.literal === "") {
          this.scalar = Scalar.None;
          this.afterValue();
        }
        return true;
      case Scalar.Number:
        if (this.continueNumber(b)) return true;
        if (this.number.needDigit) return false;
        this.scalar = Scalar.None;
        this.afterValue();
        return this.push(b);
      case Scalar.None:
        break;
    }
    if (isSpace(b)) {
      if (this.expect === Expect.Done || this.stack.length === 0) return false;
      if (this.whitespace === "none") {
        this.whitespace = b === 0x20 ? "space" : "newline";
        return b === 0x20 || b === 0x0a;
      }
      return this.whitespace === "newline" && (b === 0x20 || b === 0x09) && ++this.indent <= MAX_INDENT;
    }
    this.whitespace = "none";
    this.indent = 0;
    switch (this.expect) {
      case Expect.Done:
        return false;
      case Expect.Colon:
        if (b !== 0x3a) return false;
        this.expect = Expect.Value;
        return true;
      case Expect.KeyOrEnd:
      case Expect.Key:
        if (b === 0x7d && this.expect === Expect.KeyOrEnd) return this.close(true);
        if (b !== 0x22) return false;
        this.scalar = Scalar.String;
        this.stringIsKey = true;
        return true;
      case Expect.CommaOrObjectEnd:
        if (b === 0x7d) return this.close(true);
        if (b !== 0x2c) return false;
        this.expect = Expect.Key;
        return true;
      case Expect.CommaOrArrayEnd:
        if (b === 0x5d) return this.close(false);
        if (b !== 0x2c) return false;
        this.expect = Expect.Value;
        return true;
      case Expect.ValueOrArrayEnd:
        if (b === 0x5d) return this.close(false);
        return this.startValue(b);
      case Expect.Value:
        return this.startValue(b);
    }
  }

  private close(object: boolean): boolean {
    if (this.stack.pop() !== object) return false;
    this.afterValue();
    return true;
  }

  private startValue(b: number): boolean {
    // the top level is an object, as Ollama's JSON mode has it
    if (this.stack.length === 0 && b !== 0x7b) return false;
    if (b === 0x7b || b === 0x5b) {
      this.stack.push(b === 0x7b);
      this.expect = b === 0x7b ? Expect.KeyOrEnd : Expect.ValueOrArrayEnd;
      return true;
    }
    if (b === 0x22) {
      this.scalar = Scalar.String;
      this.stringIsKey = false;
      return true;
    }
    const literal = { 0x74: "rue", 0x66: "alse", 0x6e: "ull" }[b];
    if (literal) {
      this.scalar = Scalar.Literal;
      this.literal = literal;
      return true;
    }
    if (b === 0x2d || isDigit(b)) {
      this.scalar = Scalar.Number;
      this.number = { digits: b === 0x2d ? 0 : 1, leadingZero: b === 0x30, fraction: false, exponent: false, expSign: false, needDigit: b === 0x2d };
      return true;
    }
    return false;
  }

  private continueNumber(b: number): boolean {
    const n = this.number;
    if (isDigit(b)) {
      if (n.leadingZero && !n.fraction && !n.exponent) return false; // no digits after a leading 0
      if (n.digits === 0 && b === 0x30 && !n.fraction && !n.exponent) n.leadingZero = true;
      n.digits++;
      n.needDigit = false;
      return true;
    }
    if (b === 0x2e && !n.fraction && !n.exponent && !n.needDigit) {
      n.fraction = true;
      n.needDigit = true;
      return true;
    }
    if ((b === 0x65 || b === 0x45) && !n.exponent && !n.needDigit) {
      n.exponent = true;
      n.needDigit = true;
      return true;
    }
    if ((b === 0x2b || b === 0x2d) && n.exponent && n.needDigit && !n.expSign) {
      n.expSign = true;
      return true;
    }
    return false;
  }
}
