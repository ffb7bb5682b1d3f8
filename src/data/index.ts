/** The public `datasets` namespace: MNIST-format files and Fashion-MNIST, image folders, Kaggle's CSV, and auto() which recognises each. */
export * from './datasets.js';
export { auto, type DataSource } from './auto.js';
export { imageFolder, type FolderData, type FolderOptions, type BadFile } from './folder.js';
export { readKaggleCsv } from './csv.js';
