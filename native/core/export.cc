// TorchScript's module header includes all of ATen's operators (see CMakeLists.txt).
#undef TORCH_ASSERT_ONLY_METHOD_OPERATORS
#include "export.h"

#include <sstream>

#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/serialization/export.h>

namespace lenet5 {
namespace {

constexpr const char* kForward = R"JIT(
def forward(self, x):
    x = torch.max_pool2d(torch.relu(torch.conv2d(x, self.conv1.weight, self.conv1.bias, [1, 1], [2, 2])), [2, 2], [2, 2])
    x = torch.max_pool2d(torch.relu(torch.conv2d(x, self.conv2.weight, self.conv2.bias)), [2, 2], [2, 2])
    x = x.reshape([-1, 400])
    x = torch.relu(torch.linear(x, self.fc1.weight, self.fc1.bias))
    x = torch.relu(torch.linear(x, self.fc2.weight, self.fc2.bias))
    return torch.linear(x, self.fc3.weight, self.fc3.bias)
)JIT";

}  // namespace

std::string exportTorchScript(const Model& model) {
  auto unit = std::make_shared<torch::jit::CompilationUnit>();
  torch::jit::Module root(c10::QualifiedName("__torch__.LeNet5"), unit);
  std::map<std::string, torch::jit::Module> layers;
  for (const auto& [name, tensor] : model.stateDict()) {  // "conv1.weight" -> layer "conv1", parameter "weight"
    const auto dot = name.find('.');
    const auto layerName = name.substr(0, dot);
    auto found = layers.find(layerName);
    if (found == layers.end()) {
      found = layers.emplace(layerName, torch::jit::Module(c10::QualifiedName("__torch__.LeNet5_" + layerName), unit))
                  .first;
    }
    found->second.register_parameter(name.substr(dot + 1), tensor, /*is_buffer=*/false);
  }
  for (auto& [name, layer] : layers) root.register_module(name, layer);
  root.define(kForward);
  root.eval();
  std::ostringstream out;
  root.save(out);
  return out.str();
}

}  // namespace lenet5
