#include "serialization.h"

#include <ATen/ops/scalar_tensor.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/pickler.h>

namespace lenet5 {

c10::IValue stateDictValue(const Model& model) {
  c10::impl::GenericDict dict(c10::StringType::get(), c10::TensorType::get());
  for (auto& [name, tensor] : model.stateDict()) dict.insert(name, tensor);
  return dict;
}

c10::IValue optimizerStateValue(const Model& model, const Optimizer& optimizer) {
  const auto& slots = model.slots();
  c10::impl::GenericDict state(c10::IntType::get(), c10::AnyType::get());
  bool adam = optimizer.options().kind == OptimizerOptions::Kind::Adam;
  for (size_t i = 0; i < slots.size() && optimizer.steps() > 0; ++i) {
    const auto& slot = slots[i];
    c10::impl::GenericDict entry(c10::StringType::get(), c10::AnyType::get());
    if (adam) entry.insert("step", at::scalar_tensor(static_cast<double>(optimizer.steps()), at::kFloat));
    for (const auto& [name, flat] : optimizer.buffers()) {
      if (flat.defined())
        entry.insert(name, flat.narrow(0, slot.offset, slot.numel).view(slot.shape).to(at::kCPU).clone());
    }
    // Python's SGD keeps a momentum_buffer entry (None without momentum) only when momentum != 0.
    if (adam || optimizer.options().momentum != 0) state.insert(static_cast<int64_t>(i), entry);
  }

  c10::impl::GenericList params(c10::AnyType::get());  // a generic list: an IntList would pickle as a jit-only global
  for (size_t i = 0; i < slots.size(); ++i) params.push_back(static_cast<int64_t>(i));
  c10::impl::GenericDict group(c10::StringType::get(), c10::AnyType::get());
  const auto& o = optimizer.options();
  group.insert("lr", o.lr);
  if (adam) {
    group.insert("betas", c10::ivalue::Tuple::create({o.beta1, o.beta2}));
    group.insert("eps", o.eps);
    group.insert("weight_decay", o.weightDecay);
    group.insert("amsgrad", o.amsgrad);
    group.insert("maximize", false);
    group.insert("foreach", c10::IValue());
    group.insert("capturable", false);
    group.insert("differentiable", false);
    group.insert("fused", c10::IValue());
    group.insert("decoupled_weight_decay", false);
  } else {
    group.insert("momentum", o.momentum);
    group.insert("dampening", o.dampening);
    group.insert("weight_decay", o.weightDecay);
    group.insert("nesterov", o.nesterov);
    group.insert("maximize", false);
    group.insert("foreach", c10::IValue());
    group.insert("differentiable", false);
    group.insert("fused", c10::IValue());
  }
  group.insert("params", params);
  c10::impl::GenericList groups(c10::AnyType::get());
  groups.push_back(group);

  c10::impl::GenericDict out(c10::StringType::get(), c10::AnyType::get());
  out.insert("state", state);
  out.insert("param_groups", groups);
  return out;
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
  // The records torch::jit::writeArchiveAndTensors writes (its header pulls in all of the JIT):
  // each tensor's bytes as data/<index>, then the pickle.
  const auto& tensors = pickler.tensorData();
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto bytes = torch::jit::getWriteableTensorData(tensors[i]);
    writer.writeRecord("data/" + std::to_string(i), bytes.data(), bytes.sizeInBytes());
  }
  writer.writeRecord("data.pkl", pickle.data(), pickle.size());
  writer.writeEndOfFile();
  return archive;
}

c10::IValue checkpointValue(const Model& model, const Optimizer& optimizer, const CheckpointInfo& info) {
  c10::impl::GenericDict checkpoint(c10::StringType::get(), c10::AnyType::get());
  checkpoint.insert("epoch", info.epoch);
  checkpoint.insert("model_state_dict", stateDictValue(model));
  checkpoint.insert("optimizer_state_dict", optimizerStateValue(model, optimizer));
  checkpoint.insert("loss", info.hasLoss ? c10::IValue(info.loss) : c10::IValue());
  for (const auto& [key, value] : info.extra) checkpoint.insert(key, value);
  return checkpoint;
}

}  // namespace lenet5
