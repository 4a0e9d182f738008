"""Plain ``nn.Module`` networks behind one factory: ``create_net(name, num_classes, in_chans, **kwargs)``."""

from biobench.models.nets import cifar_resnet, small_cnn  # noqa: F401 - register the architectures
from biobench.models.nets.registry import create_net, list_nets, register_net

__all__ = ["create_net", "list_nets", "register_net"]
