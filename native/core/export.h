// Export to TorchScript: a torch::jit::Module with the model's parameters (same names as the
// state_dict) and a forward written in TorchScript, saved in the format torch.jit.load and
// torch::jit::load read.
#pragma once

#include <string>

#include "model.h"

namespace lenet5 {

std::string exportTorchScript(const Model& model);

}  // namespace lenet5
