// Writes PyTorch's zip serialization (the format of torch.save since 1.6) with LibTorch's own
// pickler and stream writer. Aggregates are left untagged, so the file holds only the globals
// that torch.load(weights_only=True) accepts: a plain dict of tensors for Python's load_state_dict.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/ivalue.h>

#include "model.h"
#include "optimizer.h"

namespace lenet5 {

c10::IValue stateDictValue(const Model& model);
// {"state": {index: {...}}, "param_groups": [{...}]}, as Python's optimizer.state_dict().
c10::IValue optimizerStateValue(const Model& model, const Optimizer& optimizer);
// The bytes of a .pth file holding `value` (tensors must be on the CPU).
std::string serializeToPth(const c10::IValue& value);

struct CheckpointInfo {
  int64_t epoch = 0;
  bool hasLoss = false;
  double loss = 0;
  // Further top-level entries, e.g. lr_scheduler_state_dict, written after the usual four.
  std::vector<std::pair<std::string, c10::IValue>> extra;
};
// {epoch, model_state_dict, optimizer_state_dict, loss, ...extra}: PyTorch's usual checkpoint layout.
c10::IValue checkpointValue(const Model& model, const Optimizer& optimizer, const CheckpointInfo& info);

}  // namespace lenet5
