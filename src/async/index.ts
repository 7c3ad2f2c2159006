// The async Component Model runtime (🔀 and friends). Importing this module
// installs it into the instantiator.

import { setAsyncRuntime } from '../runtime/instantiate.ts';
import { buildAsyncCanon, prepareInstance } from './canon.ts';

setAsyncRuntime({ prepare: prepareInstance, canon: buildAsyncCanon });

export { ErrorContext } from './canon.ts';
export { AsyncLiftedFunc } from './calls.ts';
