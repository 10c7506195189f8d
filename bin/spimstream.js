#!/usr/bin/env node
// Entry point: runs the compiled CLI (npm start / npm ci build it into dist/).
import { main } from '../dist/src/cli.js';

main(process.argv.slice(2)).then(
  (code) => {
    if (typeof code === 'number') process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`spimstream: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 2;
  },
);
