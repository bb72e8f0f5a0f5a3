#!/usr/bin/env bash
# Builds `pytorrent --features cuda` on a machine without a GPU, for a GPU machine without a
# Rust toolchain: nvcc, the CUDA headers and libraries come from the NVIDIA Python packages
# (CUDA 13.0, so that the PTX it embeds loads on a 13.x driver) in a throw-away venv; the
# driver library, which only a GPU machine has, is replaced at link time by a stub with its
# SONAME, so the real one is loaded there.
#
#   scripts/gpu/build-cuda.sh            # → target/gpu/pytorrent + target/gpu/MANIFEST.txt
#
# Environment: CUDA_COMPUTE_CAP (default 90, an H100/H200), PYTORRENT_CUDA_VENV (default
# target/cuda-venv), CARGO_TARGET_DIR for the build (default target/cuda). The output folder
# is ignored by git and small enough to carry to the GPU machine (the device tool's carry).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cap=${CUDA_COMPUTE_CAP:-90}
venv=${PYTORRENT_CUDA_VENV:-$root/target/cuda-venv}
dest=$root/target/gpu
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target/cuda}

# CUDA 13.0 throughout: a newer minor's PTX does not load on an older 13.x driver.
packages=(
  "nvidia-cuda-nvcc==13.0.88" "nvidia-cuda-runtime==13.0.96" "nvidia-nvvm<13.1"
  "nvidia-cuda-crt<13.1" "nvidia-cuda-cccl<13.1" "nvidia-cublas<13.1" "nvidia-cuda-nvrtc<13.1"
  "nvidia-curand<10.5"
)
stamp=$(printf '%s\n' "${packages[@]}")
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/packages.txt" 2>/dev/null)" != "$stamp" ]; then
  echo "== CUDA toolkit from the package index into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "${packages[@]}"
  echo "$stamp" > "$venv/packages.txt"
fi
cu=$("$venv/bin/python" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13"))')
[ -x "$cu/bin/nvcc" ] || { echo "no nvcc in $cu/bin" >&2; exit 1; }
"$cu/bin/nvcc" --version | tail -2

# Unversioned names for the linker, and the driver stub. candle links -lcuda -lnvrtc -lcurand
# -lcublas -lcublasLt -lcudart; the stub exports every cu* function of cudarc's driver
# bindings, with the SONAME of the real driver library.
link=$venv/link
rm -rf "$link"
mkdir -p "$link"
for lib in cublas cublasLt cudart nvrtc; do
  ln -s "$(ls "$cu"/lib/lib$lib.so.13* | head -1)" "$link/lib$lib.so"
done
ln -s "$(ls "$cu"/lib/libcurand.so.10* | head -1)" "$link/libcurand.so"
(cd "$root" && cargo fetch --locked --quiet)
cudarc_version=$(awk '/^name = "cudarc"$/ {getline; gsub(/[^0-9.]/, ""); print}' "$root/Cargo.lock")
cudarc=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-"$cudarc_version" | head -1)
# The symbols are the `fn cu…` declarations of the bindings' extern blocks.
grep -hoE '^\s+fn cu[A-Za-z0-9_]*' "$cudarc"/src/driver/sys/*.rs | awk '{print $2}' | sort -u \
  | awk '{print "void " $1 "(void) {}"}' > "$link/cuda_stub.c"
[ -s "$link/cuda_stub.c" ] || { echo "no cu* functions found in $cudarc" >&2; exit 1; }
gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$link/libcuda.so" "$link/cuda_stub.c"
echo "driver stub: $(grep -c . "$link/cuda_stub.c") functions of cudarc $cudarc_version"

echo "== cargo build --release --features cuda (compute capability $cap)"
started=$(date +%s)
(cd "$root" && PATH="$cu/bin:$PATH" CUDA_HOME="$cu" CUDA_PATH="$cu" CUDA_COMPUTE_CAP=$cap \
  LIBRARY_PATH="$link:$cu/lib" cargo build --release --locked --features cuda)
echo "built in $(( $(date +%s) - started )) s"

mkdir -p "$dest"
cp "$CARGO_TARGET_DIR/release/pytorrent" "$dest/pytorrent"
bytes=$(stat -c %s "$dest/pytorrent")
{
  echo "pytorrent built with --features cuda for compute capability $cap"
  echo "commit $(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown); $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  "$cu/bin/nvcc" --version | tail -1
  echo "size $bytes bytes; sha256 $(sha256sum "$dest/pytorrent" | cut -d' ' -f1)"
  echo
  echo "shared libraries the binary links (NEEDED): the driver's libcuda.so.1 comes with the"
  echo "GPU machine's driver, the others with its python3's NVIDIA packages (LD_LIBRARY_PATH):"
  readelf -d "$dest/pytorrent" | awk '/NEEDED/ {gsub(/[][]/, "", $5); print "  " $5}'
  echo
  echo "resolved here against the venv's libraries (libcuda.so.1 is the GPU machine's driver):"
  LD_LIBRARY_PATH="$cu/lib:$link" ldd "$dest/pytorrent" | sed 's/^/ /'
  echo
  # A CUDA library named in the binary but not NEEDED would be opened by name (dlopen).
  echo "CUDA libraries named in the binary besides those it links (opened by name at run time):"
  needed=$(readelf -d "$dest/pytorrent" | awk '/NEEDED/ {gsub(/[][]/, "", $5); print $5}')
  extra=$(strings "$dest/pytorrent" | grep -E '^lib(cuda|nvrtc|cublas|cublasLt|curand|cudart|nvJitLink)[A-Za-z]*\.so(\.[0-9]+)*$' \
    | sort -u | grep -vxF "$needed" || true)
  echo "${extra:-  none}" | sed 's/^\([^ ]\)/  \1/'
} > "$dest/MANIFEST.txt"
cat "$dest/MANIFEST.txt"
limit=$(( 64 << 20 ))
if [ "$bytes" -gt "$limit" ]; then
  echo "target/gpu/pytorrent is $bytes bytes, over the 64 MiB that can be carried" >&2
  exit 1
fi
echo "ok: target/gpu/pytorrent ($bytes bytes) and target/gpu/MANIFEST.txt"
