; Inno Setup script for GCL Studio on Windows. NOT BUILT OR TESTED HERE (no Windows machine): a recipe.
; Build the one-folder app first on Windows (see installer/README.md), then:
;   iscc /DAppVersion=0.1.0 installer\windows\gcl-studio.iss
; Output: dist\gcl-studio-<version>-windows-x64-setup.exe. Per-user install (no admin rights needed),
; a Start menu entry, an optional desktop icon, an uninstaller. Inno Setup 6 handles setups above 2 GB
; only with DiskSpanning; the CPU bundle stays under that, a CUDA bundle may not (see installer/README.md).

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#define AppName "GCL Studio"
#define SourceDir "..\..\dist\gcl-studio"

[Setup]
AppId={{6E1C1F3A-9D5B-4C55-9B7E-0C3B8C6A5D21}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=GCL Studio contributors
DefaultDirName={localappdata}\Programs\GCL Studio
DefaultGroupName={#AppName}
PrivilegesRequired=lowest
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\..\dist
OutputBaseFilename=gcl-studio-{#AppVersion}-windows-x64-setup
Compression=lzma2/max
SolidCompression=yes
DiskSpanning=no
LicenseFile=..\..\resources\sample_data\LICENSES.md
UninstallDisplayIcon={app}\gcl-studio.exe
WizardStyle=modern

[Tasks]
Name: "desktopicon"; Description: "Create a desktop icon"; GroupDescription: "Additional icons:"; Flags: unchecked

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\gcl-studio.exe"
Name: "{group}\{#AppName} self-test"; Filename: "{app}\gcl-studio.exe"; Parameters: "--self-test"
Name: "{group}\Uninstall {#AppName}"; Filename: "{uninstallexe}"
Name: "{userdesktop}\{#AppName}"; Filename: "{app}\gcl-studio.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\gcl-studio.exe"; Description: "Start {#AppName}"; Flags: nowait postinstall skipifsilent
