#!/usr/bin/env node
// Entry point. Runs the TypeScript sources through tsx's loader so that a fresh clone needs no
// build step beyond `npm install` (which builds the native addon).
import { register } from 'tsx/esm/api';
register();
await import('../src/cli/main.ts');
