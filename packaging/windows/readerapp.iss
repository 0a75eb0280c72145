; Inno Setup script for ReaderApp on Windows (x64).
; Build the PyInstaller folder first (build_windows.ps1 does both), then:
;   iscc /DAppVersion=0.1.0 packaging\windows\readerapp.iss
; Output: dist\ReaderApp-<version>-setup.exe (per-machine install to Program Files).

#ifndef AppVersion
  #define AppVersion "0.0.0"
#endif
#define AppName "ReaderApp"
#define BundleDir "..\..\dist\pyinstaller\readerapp"

[Setup]
AppId={{6E0B7D9A-6C4B-4E0F-9D1B-2B8A1F7C5E31}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=ReaderApp team
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
OutputDir=..\..\dist
OutputBaseFilename=ReaderApp-{#AppVersion}-setup
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
PrivilegesRequired=admin
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
UninstallDisplayIcon={app}\readerapp.exe
ChangesEnvironment=yes
#ifexist "..\resources\readerapp.ico"
SetupIconFile=..\resources\readerapp.ico
#endif

[Files]
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs
Source: "..\..\docs\SITES.md"; DestDir: "{app}\docs"; Flags: ignoreversion skipifsourcedoesntexist

[Icons]
Name: "{group}\ReaderApp"; Filename: "{app}\readerapp.exe"; Parameters: "view"
Name: "{group}\ReaderApp command prompt"; Filename: "{cmd}"; Parameters: "/K ""{app}\readerapp.exe"" --help"
Name: "{autodesktop}\ReaderApp"; Filename: "{app}\readerapp.exe"; Parameters: "view"; Tasks: desktopicon

[Tasks]
Name: "desktopicon"; Description: "Create a desktop shortcut"; Flags: unchecked
Name: "addtopath"; Description: "Add readerapp to the PATH (command line use)"

[Registry]
Root: HKLM; Subkey: "SYSTEM\CurrentControlSet\Control\Session Manager\Environment"; \
    ValueType: expandsz; ValueName: "Path"; ValueData: "{olddata};{app}"; \
    Tasks: addtopath; Check: NeedsAddPath(ExpandConstant('{app}'))

[Code]
function NeedsAddPath(Param: string): boolean;
var
  OrigPath: string;
begin
  if not RegQueryStringValue(HKEY_LOCAL_MACHINE,
    'SYSTEM\CurrentControlSet\Control\Session Manager\Environment', 'Path', OrigPath)
  then begin
    Result := True;
    exit;
  end;
  Result := Pos(';' + Uppercase(Param) + ';', ';' + Uppercase(OrigPath) + ';') = 0;
end;
