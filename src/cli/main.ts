#!/usr/bin/env node
console.log('kernel-lock');
