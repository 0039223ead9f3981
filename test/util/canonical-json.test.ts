import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/util/canonical-json.ts';

describe('canonicalJson', () => {
  it('sorts keys at every level and keeps array order', () => {
    expect(canonicalJson({ b: [3, { z: 1, a: null }], a: 'x' })).toBe('{"a":"x","b":[3,{"a":null,"z":1}]}');
  });

  it('parses back to the same value', () => {
    const value = { b: { d: [1.5e-8, 'é', true], c: null }, a: -0.1 };
    expect(JSON.parse(canonicalJson(value))).toEqual(value);
  });
});
