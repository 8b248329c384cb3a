"""calcsdk: one distribution, four source folders mapped into the ``calcsdk`` namespace.

    sdk/         -> calcsdk              runtime (numpy, opencv-contrib, onnxruntime; never torch)
    training/    -> calcsdk.training     torch + scikit-learn training, data, cross-validation
    export/      -> calcsdk.export       torch/sklearn -> ONNX, int8, TensorRT, parity reports
    benchmarks/  -> calcsdk.benchmarks   latency and accuracy harnesses

Note: ``onnxruntime`` (runtime default) and ``onnxruntime-gpu`` (the ``[gpu]`` extra) write the
same module folder and must never share one environment. Install ``[gpu]`` into an environment
without ``onnxruntime`` (``pip uninstall onnxruntime`` first).
"""

from setuptools import find_namespace_packages, find_packages, setup

FOLDERS = {
    "calcsdk": "sdk",
    "calcsdk.training": "training",
    "calcsdk.export": "export",
    "calcsdk.benchmarks": "benchmarks",
}


# Folders of package data (bundles, samples, schemas): listed as namespace packages, so that
# setuptools ships them without warning that an importable folder is missing from `packages`.
DATA_FOLDERS = ["data", "data.*", "schema"]


def _packages() -> tuple[list[str], dict[str, str]]:
    packages, package_dir = [], {}
    for name, folder in FOLDERS.items():
        packages.append(name)
        package_dir[name] = folder
        data = find_namespace_packages(folder, include=DATA_FOLDERS)
        for sub in find_packages(folder) + [d for d in data if d.replace(".", "_").isidentifier()]:
            packages.append(f"{name}.{sub}")
            package_dir[f"{name}.{sub}"] = f"{folder}/{sub.replace('.', '/')}"
    return packages, package_dir


PACKAGES, PACKAGE_DIR = _packages()

RUNTIME = [
    "numpy>=1.26",
    "opencv-contrib-python-headless>=4.8",
    "onnxruntime>=1.17",
]

EXTRAS = {
    # torch first, pinned, in the Makefile: an open range here would pull a CUDA build.
    "train": [
        "torch>=2.3",
        "scikit-learn>=1.4",
        "skl2onnx>=1.16",
        "onnx>=1.15",
        "onnxscript>=0.1",
        "tqdm>=4.60",
        "matplotlib>=3.7",
    ],
    "gpu": ["onnxruntime-gpu>=1.17", "tensorrt>=10.0", "cuda-python>=12.0"],
    "dicom": [
        "pydicom>=3.0",
        "pylibjpeg>=2.0",
        "pylibjpeg-libjpeg>=2.1",
        "pylibjpeg-openjpeg>=2.3",
        "pylibjpeg-rle>=2.0",
    ],
    "distributed": ["ray[data]>=2.9"],
    "dev": [
        "pytest>=8",
        "pytest-xdist>=3",
        "hypothesis>=6.100",
        "ruff>=0.5",
        "pycocotools>=2.0.7",
        "faster-coco-eval>=1.6",
        "jsonschema>=4",
        "tifffile>=2023.1",
    ],
}

setup(
    name="calcsdk",
    version="0.1.0",
    description="Calcification detection (malignant/benign) on mammograms: R-CNN and YOLOv4 on ONNX Runtime",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=PACKAGES,
    package_dir=PACKAGE_DIR,
    package_data={
        "calcsdk": ["py.typed", "data/samples/*", "data/models/*/*"],
        "calcsdk.benchmarks": ["schema/*.json"],
    },
    include_package_data=True,
    install_requires=RUNTIME,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["calcsdk=calcsdk.cli:main"]},
)
