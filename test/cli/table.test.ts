// Tables pad by display width: a CJK or emoji owner label takes two columns
// per character on a terminal, and the next column must start where it
// starts on every other row. The expected widths are written out by hand
// (EastAsianWidth.txt, emoji presentation), not computed by the code under test.
import { describe, expect, it } from 'vitest';
import { renderTable } from '../../src/cli/table.js';
import { displayWidth } from '../../src/cli/width.js';
import { printable } from '../../src/inspect/format.js';

describe('display width', () => {
  it.each([
    ['agent main', 10],
    ['エージェント', 12], // katakana: wide
    ['会话锁', 6], // CJK ideographs: wide
    ['세션', 4], // Hangul syllables: wide
    ['ｆｕｌｌ', 8], // fullwidth Latin
    ['🤖 bot', 6], // emoji presentation: 2, space, 3
    ['👩‍👩‍👧', 2], // one ZWJ family: one picture
    ['🇯🇵', 2], // a flag: two regional indicators, one picture
    ['☺', 1], // text presentation without VS16: narrow
    ['☺️', 2], // with VS16: emoji presentation
    ['é', 1], // e + combining acute: one column
    ['Ω≈ç', 3],
  ])('%s takes %i columns', (text, width) => {
    expect(displayWidth(text)).toBe(width);
  });

  it('renderTable aligns the column after a wide cell', () => {
    const table = renderTable(
      ['STATE', 'OWNER', 'PATH'],
      [
        ['held', 'エージェント', '/a'],
        ['held', '🤖 bot', '/b'],
        ['free', 'ascii', '/c'],
      ],
    );
    // OWNER is 12 columns wide (the katakana), then two spaces.
    expect(table.split('\n')).toEqual([
      'STATE  OWNER         PATH',
      'held   エージェント  /a',
      'held   🤖 bot        /b',
      'free   ascii         /c',
      '',
    ]);
  });

  it('printable() never cuts an emoji in half', () => {
    const label = `${'x'.repeat(38)}🤖🤖`;
    const cut = printable(label, 40);
    expect(cut).toBe(`${'x'.repeat(38)}…`);
    expect(cut).not.toMatch(/[\ud800-\udfff]/); // no lone surrogate
  });
});
