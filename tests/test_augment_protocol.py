"""The public ``Iterator`` base class (Keras 2 subclasses run unchanged) and the generator's
public draw/apply protocol, which is all the iterators use of it; no import cycle."""

import ast
import importlib
import pathlib

import numpy as np
import pytest

import cnnlab.augment as augment
from cnnlab.augment import ImageDataGenerator, Iterator

PACKAGE = pathlib.Path(augment.__file__).parent


class SquaresIterator(Iterator):
    """Written as a Keras 2 user writes one: set fields, call super, one hook."""

    def __init__(self, values, batch_size=4, shuffle=False, seed=None):
        self.values = np.asarray(values)
        super().__init__(len(values), batch_size, shuffle, seed)

    def _get_batches_of_transformed_samples(self, index_array):
        batch = self.values[index_array]
        return batch, batch ** 2


def test_a_keras2_subclass_runs_unchanged():
    it = SquaresIterator(np.arange(10), batch_size=4)
    assert (it.n, it.batch_size, it.shuffle, it.seed) == (10, 4, False, None)
    assert len(it) == 3
    x, y = it[1]
    np.testing.assert_array_equal(x, [4, 5, 6, 7])
    np.testing.assert_array_equal(y, x ** 2)
    # next() cycles through the data forever, as Keras 2's did
    firsts = [next(it)[0][0] for _ in range(7)]
    assert firsts == [0, 4, 8, 0, 4, 8, 0]
    assert it.total_batches_seen == 7
    it.reset()
    assert it.batch_index == 0 and next(it)[0][0] == 0
    assert it.next()[0][0] == 4
    with pytest.raises(ValueError, match="^Asked to retrieve element 3, but the Sequence"):
        it[3]


def test_a_keras2_subclass_shuffles_per_epoch_reproducibly_without_global_state():
    state = np.random.get_state()[1].copy()
    a = SquaresIterator(np.arange(12), batch_size=5, shuffle=True, seed=7)
    b = SquaresIterator(np.arange(12), batch_size=5, shuffle=True, seed=7)
    epoch_a = np.concatenate([a[i][0] for i in range(len(a))])
    epoch_b = np.concatenate([b[i][0] for i in reversed(range(len(b)))][::-1])
    np.testing.assert_array_equal(epoch_a, epoch_b)  # same epoch in any fetch order
    assert sorted(epoch_a) == list(range(12)) and list(epoch_a) != list(range(12))
    a.on_epoch_end()
    second = np.concatenate([a[i][0] for i in range(len(a))])
    assert sorted(second) == list(range(12)) and list(second) != list(epoch_a)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_index_generator_and_an_empty_iterator_behave_like_keras2s():
    for batch_size in (0, 32):
        it = Iterator(0, batch_size, False, 0)
        assert next(it.index_generator).size == 0
        assert len(it) == 0
    it = SquaresIterator(np.arange(5), batch_size=2)
    assert [list(next(it.index_generator)) for _ in range(4)] == [[0, 1], [2, 3], [4], [0, 1]]
    with pytest.raises(NotImplementedError, match="_get_batches_of_transformed_samples"):
        Iterator(3, 1, False, None)[0]


def test_a_keras2_subclass_trains_with_model_fit():
    import keras

    class Pairs(Iterator):
        def __init__(self, n):
            self.x = np.random.RandomState(0).rand(n, 3).astype("float32")
            super().__init__(n, 8, True, 0)

        def _get_batches_of_transformed_samples(self, index_array):
            return self.x[index_array], self.x[index_array].sum(axis=1)

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    history = model.fit(Pairs(40), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2


# the iterators, one module per job (_iterators re-exports them)
ITERATOR_MODULES = ("_iterators", "_iterator_base", "_array_iterator", "_file_iterators")


def _iterator_trees():
    return [ast.parse((PACKAGE / f"{name}.py").read_text()) for name in ITERATOR_MODULES]


def test_the_iterator_modules_are_the_ones_the_package_has():
    assert {p.stem for p in PACKAGE.glob("_*iterator*.py")} == set(ITERATOR_MODULES)


def test_the_iterators_use_only_the_generators_public_protocol():
    """AST: no ``generator._x`` / ``image_data_generator._x`` in the iterator modules."""
    names = {"generator", "image_data_generator"}
    private = []
    for node in (n for tree in _iterator_trees() for n in ast.walk(tree)):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            value = node.value
            if isinstance(value, ast.Name) and value.id in names:
                private.append(f"{value.id}.{node.attr}")
            if isinstance(value, ast.Attribute) and value.attr in names:
                private.append(f"self.{value.attr}.{node.attr}")
    assert private == []


class RecordingGenerator:
    """Not an ImageDataGenerator: only the protocol the iterators are documented to use."""

    data_format, dtype, validation_split = "channels_last", "float32", 0.0

    def __init__(self):
        self.calls = []

    def get_random_transform(self, img_shape, seed=None):
        self.calls.append(("draw", tuple(img_shape)))
        return {"value": seed.uniform()}

    def augment_batch(self, x, transform_parameters, pad_to=None):
        self.calls.append(("augment", len(x), pad_to))
        return np.asarray(x, "float32") + 1


def test_any_object_with_the_protocol_drives_an_iterator():
    gen = RecordingGenerator()
    it = augment.NumpyArrayIterator(np.zeros((5, 4, 4, 3), "uint8"), np.arange(5), gen,
                                    batch_size=4, seed=0)
    x, y = it[1]
    np.testing.assert_array_equal(x, np.ones((1, 4, 4, 3)))
    assert ("augment", 1, 4) in gen.calls and ("draw", (4, 4, 3)) in gen.calls


@pytest.mark.slow
def test_protocol_draw_apply_standardize_equals_the_batched_form():
    x = np.random.RandomState(0).rand(3, 10, 12, 3).astype("float32") * 255
    gen = ImageDataGenerator(rotation_range=30, zoom_range=0.2, channel_shift_range=10,
                             rescale=1 / 255, samplewise_center=True)
    params = [gen.get_random_transform(x.shape[1:], seed=s) for s in range(3)]
    one_by_one = np.stack([gen.standardize(gen.apply_transform(img, p))
                           for img, p in zip(x, params)])
    np.testing.assert_allclose(gen.augment_batch(x, params), one_by_one, atol=1e-5)
    np.testing.assert_allclose(
        gen.standardize_batch(gen.apply_transform_batch(x, params)), one_by_one, atol=1e-5)
    rs1, rs2 = np.random.RandomState(4), np.random.RandomState(4)
    assert gen.get_random_transform((10, 12, 3), seed=rs1) == \
        gen.get_random_transform((10, 12, 3), seed=rs2)


def _imports(module_path):
    tree = ast.parse(module_path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "cnnlab.augment":
                found |= {f"cnnlab.augment.{a.name}" for a in node.names}
            elif node.module.startswith("cnnlab.augment."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("cnnlab.augment.")}
    return {name for name in found if (PACKAGE / (name.rsplit(".", 1)[1] + ".py")).exists()}


def test_no_import_cycle_between_the_modules():
    graph = {f"cnnlab.augment.{p.stem}": _imports(p) for p in PACKAGE.glob("_*.py")}

    def reaches(start, target, seen=()):
        return any(n == target or (n not in seen and reaches(n, target, seen + (n,)))
                   for n in graph.get(start, ()))

    for name in ITERATOR_MODULES:  # the iterators never import the generator's module
        assert not reaches(f"cnnlab.augment.{name}", "cnnlab.augment._generator"), name

    cycles = [m for m in graph if reaches(m, m)]
    assert cycles == []
    for module in graph:  # and each imports on its own
        importlib.import_module(module)


def test_directory_and_dataframe_iterators_share_one_init():
    shared = ("_set_file_options", "_check_class_mode", "_split_bounds", "_set_generator")
    callers = {}
    for cls in (n for tree in _iterator_trees() for n in tree.body
                if isinstance(n, ast.ClassDef)):
        for fn in (n for n in cls.body if isinstance(n, ast.FunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, ast.Call):
                    func = node.func
                    name = func.attr if isinstance(func, ast.Attribute) else \
                        getattr(func, "id", None)
                    if name in shared:
                        callers.setdefault(name, set()).add(f"{cls.name}.{fn.name}")
    assert callers["_set_file_options"] == {"_FileIterator.__init__"}
    assert callers["_check_class_mode"] == {"_FileIterator.__init__"}
    assert callers["_split_bounds"] == {"_FileIterator.__init__"}
    assert callers["_set_generator"] == {"_FileIterator.__init__",
                                         "NumpyArrayIterator.__init__"}


def test_file_iterators_without_a_generator_just_load(tmp_path):
    from PIL import Image

    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(2):
            Image.fromarray(np.full((6, 6, 3), 40 * i, np.uint8)).save(tmp_path / cls / f"{i}.png")
    it = augment.DirectoryIterator(tmp_path, None, target_size=(6, 6), shuffle=False)
    x, y = it[0]
    assert x.dtype == np.float32 and x.shape == (4, 6, 6, 3)
    assert sorted(np.unique(x)) == [0.0, 40.0]
    with pytest.raises(ValueError, match="differs from the generator's"):
        augment.DirectoryIterator(tmp_path, ImageDataGenerator(), data_format="channels_first")


def test_cnnlabs_iterators_answer_keras2s_hook_too():
    x = np.arange(4 * 3 * 3 * 1, dtype="float32").reshape(4, 3, 3, 1)
    it = ImageDataGenerator().flow(x, np.array([10, 11, 12, 13]), batch_size=2, shuffle=False)
    batch_x, batch_y = it._get_batches_of_transformed_samples(np.array([3, 1]))
    np.testing.assert_array_equal(batch_y, [13, 11])
    np.testing.assert_allclose(batch_x, x[[3, 1]])
    assert isinstance(it, Iterator)
