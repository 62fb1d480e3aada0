/** A word of a space-separated list value and where it starts in the value's text. */
export interface ListWord {
  text: string;
  offset: number;
}

/**
 * Splits a list value (`Requires=a.service b.service`) on whitespace, keeping each word's offset
 * for messages. Quotes group words as in a shell (`"a b"` is one word) and are removed; an
 * unclosed quote is returned as `unclosedAt`.
 */
export function splitListWords(text: string): { words: ListWord[]; unclosedAt?: number } {
  const words: ListWord[] = [];
  let at = 0;
  while (at < text.length) {
    while (at < text.length && isBlank(text[at])) at++;
    if (at === text.length) break;
    const offset = at;
    let word = "";
    let pieceStart = at;
    let quote: string | undefined;
    let quoteAt = 0;
    for (; at < text.length && (quote !== undefined || !isBlank(text[at])); at++) {
      const ch = text[at];
      if (quote === undefined && (ch === '"' || ch === "'")) {
        word += text.slice(pieceStart, at);
        quote = ch;
        quoteAt = at;
        pieceStart = at + 1;
      } else if (ch === quote) {
        word += text.slice(pieceStart, at);
        quote = undefined;
        pieceStart = at + 1;
      }
    }
    word += text.slice(pieceStart, at);
    words.push({ text: word, offset });
    if (quote !== undefined) return { words, unclosedAt: quoteAt };
  }
  return { words };
}

const isBlank = (ch: string | undefined): boolean => ch === " " || ch === "\t";
