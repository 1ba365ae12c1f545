// Theme and glyphs for every component, so NO_COLOR / TERM=dumb / ASCII are decided once.
// React in scope: tsx started from another directory finds no tsconfig and compiles JSX to React.createElement.
import React from 'react';
import { createContext, useContext } from 'react';
import { glyphsFor, type Glyphs, type Theme } from '../theme.ts';

export { STATUS_COLORS } from '../theme.ts';

export interface UiEnv {
  theme: Theme;
  glyphs: Glyphs;
}

const defaultTheme: Theme = { color: true, ascii: false, escapes: true };
export const UiEnvContext = createContext<UiEnv>({ theme: defaultTheme, glyphs: glyphsFor(defaultTheme) });

export function useUiEnv(): UiEnv {
  return useContext(UiEnvContext);
}

/** A colour name when colour is on, undefined otherwise (Ink then writes no colour codes). */
export function tint(env: UiEnv, color: string): string | undefined {
  return env.theme.color ? color : undefined;
}
