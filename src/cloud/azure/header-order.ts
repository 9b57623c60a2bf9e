/**
 * The order Azure Storage sorts `x-ms-*` headers in when it checks a Shared Key signature: not plain
 * code-unit order but .NET's en-US culture-aware comparison, in which `-` and `'` are ignored at first
 * (so `x-ms-meta-ab` sorts before `x-ms-meta-a-c`) and only break ties afterwards. The Azure SDKs imitate
 * it with three weight levels over ASCII (`SharedKeyComparator` in @azure/storage-common); this is the
 * same algorithm, with the weights written as rules instead of tables. Exists so that a request with such
 * headers (user metadata, mostly) is signed the way the service verifies it.
 */

const LEVEL0_PUNCTUATION: Record<string, number> = {
  '!': 0x71c,
  '#': 0x71f,
  $: 0x721,
  '%': 0x723,
  '&': 0x725,
  '*': 0x72d,
  '+': 0x803,
  '.': 0x733,
  '^': 0x743,
  _: 0x744,
  '`': 0x748,
  '|': 0x74c,
  '~': 0x750,
};
const LETTER_WEIGHTS = [
  0xe02, 0xe09, 0xe0a, 0xe1a, 0xe21, 0xe23, 0xe25, 0xe2c, 0xe32, 0xe35, 0xe36, 0xe48, 0xe51, 0xe70, 0xe7c, 0xe7e, 0xe89,
  0xe8a, 0xe91, 0xe99, 0xe9f, 0xea2, 0xea4, 0xea6, 0xea7, 0xea9,
];
const DIGIT_WEIGHTS = [0xd03, 0xd1a, 0xd1c, 0xd1e, 0xd20, 0xd22, 0xd24, 0xd26, 0xd28, 0xd2a];

/** Level 0: letters (either case) and digits by their alphabet, some punctuation; 0 = ignored here. */
function level0(c: number): number {
  if (c >= 0x61 && c <= 0x7a) return LETTER_WEIGHTS[c - 0x61]!;
  if (c >= 0x41 && c <= 0x5a) return LETTER_WEIGHTS[c - 0x41]!;
  if (c >= 0x30 && c <= 0x39) return DIGIT_WEIGHTS[c - 0x30]!;
  return LEVEL0_PUNCTUATION[String.fromCharCode(c)] ?? 0;
}

/** Level 2: upper-case letters carry a case weight. */
const level2 = (c: number) => (c >= 0x41 && c <= 0x5a ? 0x12 : 0);
/** Level 4: the ignored apostrophe and hyphen. */
const level4 = (c: number) => (c === 0x27 ? 0x8012 : c === 0x2d ? 0x8212 : 0);
const LEVELS = [level0, level2, level4];

/** Whether `lhs` sorts before `rhs`. */
function isLessThan(lhs: string, rhs: string): boolean {
  let level = 0;
  let i = 0;
  let j = 0;
  while (level < LEVELS.length) {
    if (level === LEVELS.length - 1 && i !== j) return i > j;
    const weigh = LEVELS[level]!;
    const w1 = i < lhs.length ? weigh(lhs.charCodeAt(i)) : 0x1;
    const w2 = j < rhs.length ? weigh(rhs.charCodeAt(j)) : 0x1;
    if (w1 === 0x1 && w2 === 0x1) {
      i = 0;
      j = 0;
      level++;
    } else if (w1 === w2) {
      i++;
      j++;
    } else if (w1 === 0) i++;
    else if (w2 === 0) j++;
    else return w1 < w2;
  }
  return false;
}

/** A sort comparator over lower-case header names in Azure Storage's order. */
export function compareSharedKeyHeaders(lhs: string, rhs: string): number {
  if (lhs === rhs) return 0;
  return isLessThan(lhs, rhs) ? -1 : 1;
}
