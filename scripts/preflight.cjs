// Runs before `npm start` and `npm test` (and the other scripts that run TypeScript with node). Plain
// CommonJS with nothing newer than ES5 syntax on purpose: its job is to run on an OLD Node and say, in one
// line, which Node the project needs, instead of `Unknown file extension ".ts"` or a crash inside vitest.
'use strict';
var fs = require('fs');
var path = require('path');

var root = path.join(__dirname, '..');
var wanted = 24;
try {
  var range = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).engines.node;
  var match = /(\d+)/.exec(range);
  if (match) wanted = Number(match[1]);
} catch (error) {
  // package.json unreadable: keep the default
}
var have = Number(process.versions.node.split('.')[0]);
if (have < wanted) {
  process.stderr.write('switchyard needs Node.js ' + wanted + ' or newer, but this is Node.js ' + process.versions.node
    + ' (' + process.execPath + '): run `nvm install` (it reads .nvmrc), or get Node ' + wanted + ' from https://nodejs.org, '
    + 'or `source .ci/node-env.sh` (a Node ' + wanted + ' from npm, first on PATH); then run the command again.\n');
  process.exit(1);
}
