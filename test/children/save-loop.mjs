// Saves one of two models to argv[2] over and over, until killed. The parent kills it at random moments.
import { LeNet5 } from '../../dist/index.js';

const path = process.argv[2];
const models = [new LeNet5({ seed: 1 }), new LeNet5({ seed: 2 })];
process.stdout.write('ready\n');
for (let i = 0; ; i++) await models[i % 2].save(path);
