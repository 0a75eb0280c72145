# Build ReaderApp's Windows installer: PyInstaller one-folder bundle, then Inno Setup.
# Run from the repository root in a Python 3.11+ environment with ReaderApp installed
# (pip install -e .[packaging]) and Inno Setup 6 installed (iscc on PATH or in its default folder).
#   powershell -ExecutionPolicy Bypass -File packaging\windows\build_windows.ps1
$ErrorActionPreference = "Stop"
$root = Resolve-Path "$PSScriptRoot\..\.."
Set-Location $root
$version = (python -c "import sys; sys.path.insert(0, 'src'); import readerapp; print(readerapp.__version__)").Trim()
$t0 = Get-Date
python -m PyInstaller --noconfirm --clean --distpath dist\pyinstaller --workpath dist\build packaging\readerapp.spec
if ($LASTEXITCODE -ne 0) { throw "PyInstaller failed" }
if (-not (Get-ChildItem dist\pyinstaller\readerapp -Recurse -Filter "_SimpleITK*.pyd")) { throw "SimpleITK's library is missing from the bundle" }
& dist\pyinstaller\readerapp\readerapp.exe --version
if ($LASTEXITCODE -ne 0) { throw "the bundled program does not start" }
$iscc = (Get-Command iscc -ErrorAction SilentlyContinue).Source
if (-not $iscc) { $iscc = "${env:ProgramFiles(x86)}\Inno Setup 6\ISCC.exe" }
& $iscc "/DAppVersion=$version" packaging\windows\readerapp.iss
if ($LASTEXITCODE -ne 0) { throw "Inno Setup failed" }
Write-Host ("built dist\ReaderApp-$version-setup.exe in {0:N0} s" -f ((Get-Date) - $t0).TotalSeconds)
