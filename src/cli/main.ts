#!/usr/bin/env node
/** The lenet5 command. Exit codes: 0 success, 1 runtime error, 2 usage error. */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { DEFAULT_FIT, FITS } from '../data/preprocess.js';
import { parseDevice } from '../device.js';
import { packageRoot } from '../native.js';
import { SERVE_DECODE_TIMEOUT_SECONDS, SERVE_MAX_IMAGE_PIXELS } from '../data/image.js';
import { dropOutputToClosedPipes, printJson, reportError } from './output.js';

// Each command's module (and its libraries: sharp, vega, fastify) loads when that command runs,
// so --help and --version answer at once.
const commands = () => import('./commands.js');

const allowNonFinite = () =>
  new Option('--allow-non-finite', 'load weights that hold NaN or infinity (outputs that are not finite are still errors)');

function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n <= 0)
    throw new InvalidArgumentError(`Expected a positive integer but received "${value}".`);
  return n;
}

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n))
    throw new InvalidArgumentError(`Expected a non-negative integer but received "${value}".`);
  return n;
}

function nonNegativeFloat(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0)
    throw new InvalidArgumentError(`Expected a non-negative number but received "${value}".`);
  return n;
}

function positiveFloat(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0)
    throw new InvalidArgumentError(`Expected a positive number but received "${value}".`);
  return n;
}

function fraction(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n > 0 && n < 1))
    throw new InvalidArgumentError(`Expected a number between 0 and 1 (exclusive) but received "${value}".`);
  return n;
}

function port(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) throw new InvalidArgumentError(`Expected a port from 0 to 65535 but received "${value}".`);
  return n;
}

/** An IP address or a host name; dotted numbers must be an IPv4 address. */
function host(value: string): string {
  const name = /^(?=.*[a-z])[a-z0-9-]+(\.[a-z0-9-]+)*$/i.test(value);
  if (isIP(value) === 0 && !name) {
    throw new InvalidArgumentError(
      `Expected an IP address of this machine (127.0.0.1, 0.0.0.0, ::1, ::) or a host name but received "${value}".`,
    );
  }
  return value;
}

function device(value: string): string {
  try {
    return parseDevice('--device', value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

/** The options of every command that reads a dataset (train, evaluate). */
function dataOptions(command: Command): Command {
  return command
    .option(
      '--data <path>',
      'MNIST IDX folder, image folder (one subfolder per class, optionally below train/ val/ test/) or Kaggle CSV (default: $LENET5_DATA or /usr/share/datasets/fashion-mnist)',
    )
    .option('--invert', 'image folders: invert the images (for dark drawings on a light background)')
    .option('--no-invert', "image folders: do not invert (evaluate: overrides the model's --invert)")
    .addOption(
      new Option(
        '--fit <mode>',
        `image folders: stretch or pad to 28x28, or mnist (fit into 20x20, centre by centre of mass) (default: train ${DEFAULT_FIT}, evaluate as the model was trained)`,
      ).choices(FITS),
    )
    .addOption(
      new Option('--on-bad-file <action>', 'image folders and CSV: stop at unreadable files, or skip and list them')
        .choices(['error', 'skip'])
        .default('error'),
    )
    .option(
      '--cache-dir <dir>',
      'where decoded image folders are cached (default: $LENET5_CACHE_DIR, $XDG_CACHE_HOME/lenet5-libtorch or ~/.cache/lenet5-libtorch)',
    )
    .option('--no-cache', 'decode image folders again, without reading or writing the cache')
    .option(
      '--val-split <fraction>',
      'share of the training data held out for validation (and as the test set when the data has none)',
      fraction,
      0.1,
    )
    .option('--seed <n>', 'seed for initialisation, splits and shuffling', nonNegativeInt, 0);
}

const version = (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
dropOutputToClosedPipes();
const json = process.argv.includes('--json');
let exitCode = 0;
// Commander hands each action its parsed arguments and options untyped; each command module declares
// the types it expects (any function's parameters accept never[], so every action fits `body`).
const run =
  (body: (...args: never[]) => Promise<number>) =>
  async (...args: unknown[]) => {
    exitCode = await body(...(args as never[]));
  };

const program = new Command('lenet5')
  .description('LeNet-5 on LibTorch: train, evaluate and run PyTorch-compatible models from Node.js')
  .version(version)
  .exitOverride()
  .showHelpAfterError('(run with --help for usage)');

dataOptions(program.command('train'))
  .description('Train LeNet-5 (validation each epoch), test it, and save the weights as a PyTorch state_dict')
  .option('--epochs <n>', 'total epochs', positiveInt, 10)
  .option('--batch-size <n>', 'batch size', positiveInt, 64)
  .addOption(new Option('--optimizer <name>', 'optimizer (sgd uses momentum 0.9)').choices(['adam', 'sgd']).default('adam'))
  .option('--lr <rate>', 'learning rate', positiveFloat, 0.001)
  .option('--device <device>', 'auto (cuda:0 when available, else cpu), cpu, cuda or cuda:N', device, 'auto')
  .option('--out <file>', 'where to save the weights', 'lenet5_model.pth')
  .option('--checkpoint <file>', 'write a resumable checkpoint after every epoch')
  .option('--resume <file>', "continue from a checkpoint (this package's or Python's) up to --epochs")
  .option('--report <dir>', 'write an HTML report with curves, confusion matrix and misclassified images')
  .option(
    '--lr-schedule <spec>',
    "step:STEP_SIZE:GAMMA, cosine[:T_MAX[:ETA_MIN]] (T_MAX default: --epochs) or plateau:PATIENCE:FACTOR; PyTorch's StepLR, CosineAnnealingLR, ReduceLROnPlateau, stepped once per epoch",
  )
  .option('--early-stop <patience>', 'stop when the validation loss has not improved for this many epochs', positiveInt)
  .option(
    '--min-delta <d>',
    'with --early-stop: the least decrease of the validation loss that counts as an improvement',
    nonNegativeFloat,
    0,
  )
  .option('--save-best', 'keep the weights of the epoch with the best validation accuracy: the test and --out use them')
  .option('--json', 'print one JSON object instead of lines')
  .action(run(async (options) => (await import('./train.js')).trainCommand(options)));

dataOptions(program.command('evaluate'))
  .description(
    'Evaluate a saved model: loss, accuracy, per-class accuracy, confusion matrix (data without a test split: the test set train held out)',
  )
  .argument('<model>', '.pth file or int8 model (lenet5 quantize)')
  .addOption(
    new Option('--split <split>', 'which split (all: every image of the data)').choices(['test', 'val', 'train', 'all']).default('test'),
  )
  .addOption(allowNonFinite())
  .option('--json', 'print one JSON object')
  .action(run(async (model, options) => (await commands()).evaluateCommand(model, options)));

program
  .command('predict')
  .description('Classify images (PNG, JPEG, WebP, GIF, TIFF or PGM; converted to 28x28 grayscale), folders of them, or a Kaggle CSV')
  .argument('<model>', '.pth file or int8 model (lenet5 quantize)')
  .argument('[images...]', 'image files or folders')
  .option('--invert', 'invert the images (for dark drawings on a light background)')
  .addOption(
    new Option(
      '--fit <mode>',
      'mnist (fit into 20x20, centre by centre of mass), stretch or pad to 28x28 (default: as the model was trained, else stretch)',
    ).choices(FITS),
  )
  .option('--csv <file>', 'Kaggle digit-recognizer CSV (pixel0,...,pixel783) to predict instead of images')
  .option('--out <file>', "write the predictions: .json, else CSV (with --csv: Kaggle's ImageId,Label)")
  .option('--top <k>', 'how many top classes to list (1 to the class count; default 3, or the class count if fewer)', positiveInt)
  .addOption(allowNonFinite())
  .option('--json', 'print one JSON object')
  .action(run(async (model, images, options) => (await commands()).predictCommand(model, images, options)));

program
  .command('inspect')
  .description('List the tensors (name, dtype, shape) and format of a .pth file or an int8 model, without building a model')
  .argument('<file>', '.pth file or int8 model')
  .option('--json', 'print one JSON object')
  .action(run(async (file, options) => (await commands()).inspectCommand(file, options)));

program
  .command('quantize')
  .description(
    'Quantize a saved model to int8 (static, post-training): per-channel int8 weights, activation scales calibrated on training images; prints the test accuracy before and after',
  )
  .argument('<model>', '.pth file')
  .requiredOption(
    '--calibrate <data>',
    'data to calibrate on (its training images) and test on: MNIST IDX folder, image folder or Kaggle CSV, as for --data',
  )
  .option('--images <n>', 'how many training images to calibrate on', positiveInt, 1000)
  .option('--out <file>', 'the int8 model file (default: the model name with .int8)')
  .option(
    '--cache-dir <dir>',
    'where decoded image folders are cached (default: $LENET5_CACHE_DIR, $XDG_CACHE_HOME/lenet5-libtorch or ~/.cache/lenet5-libtorch)',
  )
  .addOption(allowNonFinite())
  .option('--json', 'print one JSON object')
  .action(run(async (model, options) => (await import('./quantize.js')).quantizeCommand(model, options)));

program
  .command('export')
  .description('Export a saved model for deployment: TorchScript (torch.jit.load, LibTorch) or ONNX (ONNX Runtime)')
  .argument('<model>', '.pth file, or an int8 model with --int8')
  .addOption(new Option('--format <format>', 'export format').choices(['torchscript', 'onnx']).makeOptionMandatory())
  .option('--out <file>', 'output file (default: the model name with .pt or .onnx; never the model itself)')
  .option('--int8', 'the model is an int8 model (lenet5 quantize): write QDQ ONNX (QuantizeLinear/DequantizeLinear around Conv and Gemm)')
  .addOption(allowNonFinite())
  .option('--json', 'print one JSON object')
  .action(run(async (model, options) => (await commands()).exportCommand(model, options)));

program
  .command('serve')
  .description('Serve predictions over HTTP: POST /predict (image or JSON pixels), GET /healthz, GET / (draw or drop an image)')
  .argument('<model>', '.pth file or int8 model (lenet5 quantize)')
  .option('--port <n>', 'port (0 picks a free one)', port, 8080)
  .option('--host <address>', 'address to listen on (0.0.0.0 for every interface)', host, '127.0.0.1')
  .option('--device <device>', 'cpu, cuda, cuda:N or auto', device, 'cpu')
  .option('--max-body <bytes>', 'largest request body', positiveInt, 1024 * 1024)
  .option('--rate-limit <n>', 'POST /predict requests per second per client address (0: no limit)', nonNegativeInt, 100)
  .option('--max-batch <n>', 'most concurrent requests merged into one forward pass', positiveInt, 256)
  .option(
    '--max-image-pixels <n>',
    'largest image accepted, in pixels (width x height), checked before decoding',
    positiveInt,
    SERVE_MAX_IMAGE_PIXELS,
  )
  .option(
    '--decode-timeout <seconds>',
    'decoding one image stops after this many seconds (400 ERR_LENET5_IMAGE)',
    positiveInt,
    SERVE_DECODE_TIMEOUT_SECONDS,
  )
  .addOption(allowNonFinite())
  .option('--json', 'print one JSON line when listening')
  .action(run(async (model, options) => (await import('./serve.js')).serveCommand(model, options)));

program
  .command('build')
  .description(
    'Build the native addon (after an install that ran no scripts: pnpm 10, --ignore-scripts); fetches LibTorch from PyPI when none is found',
  )
  .option('--force', 'rebuild even when the addon matches the LibTorch found')
  .option('--json', 'print one JSON object')
  .action(run(async (options) => (await import('./build.js')).buildCommand(options)));

program
  .command('info')
  .description('Versions of the package, Node.js and LibTorch; CUDA availability; threads')
  .option('--json', 'print one JSON object')
  .action(run(async (options) => (await commands()).infoCommand(options)));

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // Commander has printed its message (or, for a missing command, the help) on stderr already.
    // --help and --version are successes; anything else is a usage error.
    exitCode = error.exitCode === 0 ? 0 : 2;
    const message =
      error.code === 'commander.help'
        ? 'Expected a command: train, evaluate, predict, inspect, quantize, export, serve, info or build. Run lenet5 --help.'
        : error.message.replace(/^error: /, '');
    if (exitCode === 2 && json) printJson({ ok: false, error: { code: 'ERR_LENET5_USAGE', message } });
  } else {
    exitCode = reportError(error, json);
  }
}
process.exitCode = exitCode;
