"""DataWatch and ChildrenWatch (they live in zkclient.watchers); here for kazoo's import path,
`kazoo.recipe.watchers`."""

from zkclient.watchers import ChildrenWatch, DataWatch

__all__ = ["ChildrenWatch", "DataWatch"]
