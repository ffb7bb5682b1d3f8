#include "serialization.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/export.h>
#include <torch/csrc/jit/serialization/pickler.h>

namespace lenet5 {

c10::IValue stateDictValue(const Model& model) {
  c10::impl::GenericDict dict(c10::StringType::get(), c10::TensorType::get());
  for (auto& [name, tensor] : model.stateDict()) dict.insert(name, tensor);
  return dict;
}

std::string serializeToPth(const c10::IValue& value) {
  std::string pickle;
  torch::jit::Pickler pickler([&](const char* bytes, size_t size) { pickle.append(bytes, size); }, nullptr, nullptr,
                              nullptr, nullptr,
                              /*tag_aggregates=*/false);
  pickler.protocol();
  pickler.pushIValue(value);
  pickler.stop();

  std::string archive;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* bytes, size_t size) {
    archive.append(static_cast<const char*>(bytes), size);
    return size;
  });
  torch::jit::writeArchiveAndTensors("data", pickle.data(), pickle.size(), pickler.tensorData(), writer);
  writer.writeEndOfFile();
  return archive;
}

c10::IValue checkpointValue(const Model& model, const Optimizer& optimizer, const CheckpointInfo& info) {
  c10::impl::GenericDict checkpoint(c10::StringType::get(), c10::AnyType::get());
  checkpoint.insert("epoch", info.epoch);
  checkpoint.insert("model_state_dict", stateDictValue(model));
  checkpoint.insert("optimizer_state_dict", optimizer.stateDict(model));
  checkpoint.insert("loss", info.hasLoss ? c10::IValue(info.loss) : c10::IValue());
  for (const auto& [key, value] : info.extra) checkpoint.insert(key, value);
  return checkpoint;
}

}  // namespace lenet5
